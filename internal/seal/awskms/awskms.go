// Package awskms is a seal backend over AWS KMS (aws-sdk-go-v2). Wrap asks
// KMS for a fresh AES-256 data key with GenerateDataKey and seals the root
// key locally under it with AES-256-GCM; the data key's ciphertext travels
// in the envelope. The encryption context binds the data key to keywarden's
// seal and to a hash of the additional data, and Decrypt names the key id,
// so a blob made under another key, with other additional data, or changed
// in any byte does not open.
package awskms

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"
	"github.com/aws/smithy-go"

	"github.com/keywarden/keywarden/internal/seal"
)

// Type is the seal type recorded in the vault's seal configuration.
const Type = "awskms"

// Config configures an AWS KMS seal.
type Config struct {
	// KeyID is the KMS key: a key id, key ARN, alias name (alias/...) or
	// alias ARN. It must be a symmetric encryption key.
	KeyID string
	// Region is the key's region; empty uses the SDK's default chain
	// (AWS_REGION, the shared config).
	Region string
	// Endpoint overrides the KMS endpoint (a VPC endpoint, or a fake in
	// tests).
	Endpoint string
	// Credentials overrides the SDK's default credential chain (tests).
	Credentials aws.CredentialsProvider
	// MaxAttempts bounds the SDK's retries (0: the SDK's default).
	MaxAttempts int
	// Timeout bounds each call (default 15s).
	Timeout time.Duration
}

// Seal is an AWS KMS seal. It is safe for concurrent use.
type Seal struct {
	cfg    Config
	client *kms.Client
}

// New loads the AWS configuration (credentials from the SDK's default chain:
// environment, shared files, SSO, instance or task role) and returns a
// seal. It does not call KMS.
func New(ctx context.Context, cfg Config) (*Seal, error) {
	if cfg.KeyID == "" || strings.ContainsAny(cfg.KeyID, " \t\n") {
		return nil, errors.New("awskms seal: a key id, ARN or alias is required")
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 15 * time.Second
	}
	var opts []func(*config.LoadOptions) error
	if cfg.Region != "" {
		opts = append(opts, config.WithRegion(cfg.Region))
	}
	if cfg.Credentials != nil {
		opts = append(opts, config.WithCredentialsProvider(cfg.Credentials))
	}
	if cfg.MaxAttempts > 0 {
		opts = append(opts, config.WithRetryMaxAttempts(cfg.MaxAttempts))
	}
	ac, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("awskms seal: load AWS configuration: %w", err)
	}
	if ac.Region == "" {
		return nil, errors.New("awskms seal: no region: set region= in the seal URL or AWS_REGION")
	}
	client := kms.NewFromConfig(ac, func(o *kms.Options) {
		if cfg.Endpoint != "" {
			o.BaseEndpoint = aws.String(cfg.Endpoint)
		}
	})
	return &Seal{cfg: cfg, client: client}, nil
}

// Type implements vault.SealWrapper.
func (s *Seal) Type() string { return Type }

// KeyID implements vault.SealWrapper: the configured key id, ARN or alias.
func (s *Seal) KeyID() string { return s.cfg.KeyID }

// String names the seal.
func (s *Seal) String() string { return "awskms key " + s.cfg.KeyID }

// encryptionContext binds a data key to keywarden's seal and to aad. The
// context is logged by CloudTrail, so it holds a hash of aad, not aad.
func encryptionContext(aad []byte) map[string]string {
	h := sha256.Sum256(aad)
	return map[string]string{
		"keywarden:purpose": "seal",
		"keywarden:aad":     base64.RawURLEncoding.EncodeToString(h[:]),
	}
}

// Wrap implements vault.SealWrapper.
func (s *Seal) Wrap(ctx context.Context, plaintext, aad []byte) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	out, err := s.client.GenerateDataKey(ctx, &kms.GenerateDataKeyInput{
		KeyId:             aws.String(s.cfg.KeyID),
		KeySpec:           types.DataKeySpecAes256,
		EncryptionContext: encryptionContext(aad),
	})
	if err != nil {
		return nil, fmt.Errorf("%s: GenerateDataKey: %w", s, describe(err))
	}
	defer clear(out.Plaintext)
	if len(out.Plaintext) != seal.DataKeySize || len(out.CiphertextBlob) == 0 {
		return nil, fmt.Errorf("%s: GenerateDataKey returned no 32-byte data key", s)
	}
	sealed, err := seal.SealLocal(out.Plaintext, plaintext, aad)
	if err != nil {
		return nil, err
	}
	return seal.Envelope{WrappedKey: out.CiphertextBlob, Sealed: sealed}.Encode()
}

// Unwrap implements vault.SealWrapper.
func (s *Seal) Unwrap(ctx context.Context, blob, aad []byte) ([]byte, error) {
	env, err := seal.DecodeEnvelope(blob)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", s, err)
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	out, err := s.client.Decrypt(ctx, &kms.DecryptInput{
		CiphertextBlob:    env.WrappedKey,
		KeyId:             aws.String(s.cfg.KeyID),
		EncryptionContext: encryptionContext(aad),
	})
	if err != nil {
		err = describe(err)
		var ice *types.InvalidCiphertextException
		var ike *types.IncorrectKeyException
		if errors.As(err, &ice) || errors.As(err, &ike) {
			return nil, fmt.Errorf("%s: Decrypt: %w (%w)", s, err, seal.ErrAuth)
		}
		return nil, fmt.Errorf("%s: Decrypt: %w", s, err)
	}
	defer clear(out.Plaintext)
	if len(out.Plaintext) != seal.DataKeySize {
		return nil, fmt.Errorf("%s: Decrypt returned no 32-byte data key: %w", s, seal.ErrAuth)
	}
	res, err := seal.OpenLocal(out.Plaintext, env.Sealed, aad)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", s, err)
	}
	return res, nil
}

// describe shortens an SDK error to its code and message where the service
// answered, keeping the error chain for errors.As.
func describe(err error) error {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return &apiError{code: ae.ErrorCode(), msg: ae.ErrorMessage(), err: err}
	}
	return err
}

type apiError struct {
	code, msg string
	err       error
}

func (e *apiError) Error() string {
	if e.msg == "" {
		return e.code
	}
	return e.code + ": " + e.msg
}

func (e *apiError) Unwrap() error { return e.err }
