// Package awssm reads secrets from AWS Secrets Manager (GetSecretValue over
// the JSON 1.1 protocol, signed with SigV4 by aws-sdk-go-v2's signer), for
// keywarden key import aws-sm://. Credentials and region come from the AWS
// SDK's default chain. It only reads; nothing is written back.
package awssm

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/config"
)

// Config configures a reader.
type Config struct {
	// Region; empty uses AWS_REGION or the shared configuration.
	Region string
	// Endpoint overrides https://secretsmanager.<region>.amazonaws.com (a
	// VPC endpoint, or a fake in tests).
	Endpoint string
	// Credentials overrides the SDK's default chain (tests).
	Credentials aws.CredentialsProvider
	// Timeout bounds each request (default 15s).
	Timeout time.Duration
}

// Reader reads secrets.
type Reader struct {
	region, endpoint string
	creds            aws.CredentialsProvider
	hc               *http.Client
	signer           *v4.Signer
}

// New loads the AWS configuration and returns a reader. It does not call
// AWS.
func New(ctx context.Context, cfg Config) (*Reader, error) {
	var opts []func(*config.LoadOptions) error
	if cfg.Region != "" {
		opts = append(opts, config.WithRegion(cfg.Region))
	}
	if cfg.Credentials != nil {
		opts = append(opts, config.WithCredentialsProvider(cfg.Credentials))
	}
	ac, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("aws-sm: load AWS configuration: %w", err)
	}
	if ac.Region == "" {
		return nil, errors.New("aws-sm: no region: set region= or AWS_REGION")
	}
	endpoint := cfg.Endpoint
	if endpoint == "" {
		endpoint = "https://secretsmanager." + ac.Region + ".amazonaws.com"
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 15 * time.Second
	}
	hc := &http.Client{
		Timeout:       cfg.Timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	return &Reader{region: ac.Region, endpoint: strings.TrimSuffix(endpoint, "/"), creds: ac.Credentials, hc: hc, signer: v4.NewSigner()}, nil
}

// Error is an error answer from Secrets Manager.
type Error struct {
	Type, Message string
}

func (e *Error) Error() string {
	if e.Message == "" {
		return e.Type
	}
	return e.Type + ": " + e.Message
}

// GetSecretString returns the current SecretString of the secret id (a
// name or ARN). The caller must not log it.
func (r *Reader) GetSecretString(ctx context.Context, id string) (string, error) {
	if id == "" {
		return "", errors.New("aws-sm: no secret id")
	}
	if r.creds == nil {
		return "", errors.New("aws-sm: no AWS credentials")
	}
	creds, err := r.creds.Retrieve(ctx)
	if err != nil {
		return "", fmt.Errorf("aws-sm: credentials: %w", err)
	}
	body, err := json.Marshal(map[string]string{"SecretId": id})
	if err != nil {
		return "", err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, r.endpoint+"/", bytes.NewReader(body))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/x-amz-json-1.1")
	req.Header.Set("X-Amz-Target", "secretsmanager.GetSecretValue")
	sum := sha256.Sum256(body)
	if err := r.signer.SignHTTP(ctx, creds, req, hex.EncodeToString(sum[:]), "secretsmanager", r.region, time.Now()); err != nil {
		return "", fmt.Errorf("aws-sm: sign: %w", err)
	}
	resp, err := r.hc.Do(req)
	if err != nil {
		return "", fmt.Errorf("aws-sm %s: unreachable: %w", id, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return "", fmt.Errorf("aws-sm %s: %w", id, err)
	}
	defer clear(data)
	if resp.StatusCode != http.StatusOK {
		var e struct {
			Type    string `json:"__type"`
			Message string `json:"message"`
			Msg     string `json:"Message"`
		}
		_ = json.Unmarshal(data, &e)
		if i := strings.LastIndex(e.Type, "#"); i >= 0 {
			e.Type = e.Type[i+1:]
		}
		if e.Type == "" {
			e.Type = http.StatusText(resp.StatusCode)
		}
		if e.Message == "" {
			e.Message = e.Msg
		}
		return "", fmt.Errorf("aws-sm %s: %w", id, &Error{Type: e.Type, Message: e.Message})
	}
	var out struct {
		SecretString *string `json:"SecretString"`
	}
	if err := json.Unmarshal(data, &out); err != nil {
		return "", fmt.Errorf("aws-sm %s: answer is not the expected JSON", id)
	}
	if out.SecretString == nil {
		return "", fmt.Errorf("aws-sm %s: the secret has no SecretString (binary secrets are not supported)", id)
	}
	return *out.SecretString, nil
}
