package awssm_test

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/keywarden/keywarden/internal/seal/awssm"
	"github.com/keywarden/keywarden/internal/seal/awssm/awssmtest"
)

func TestGetSecretString(t *testing.T) {
	t.Setenv("AWS_CONFIG_FILE", os.DevNull)
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", os.DevNull)
	f := awssmtest.New(t)
	f.Put("exchanges/binance", `{"api_key":"AK","secret":"S"}`)
	f.Put("exchanges/other", "x")
	f.Allow("AKIATEST", "exchanges/binance")
	creds := func(akid string) aws.CredentialsProvider {
		return aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return aws.Credentials{AccessKeyID: akid, SecretAccessKey: "sm-secret-key-0001"}, nil
		})
	}
	ctx := context.Background()
	r, err := awssm.New(ctx, awssm.Config{Region: "eu-west-1", Endpoint: f.URL, Credentials: creds("AKIATEST")})
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"exchanges/binance", "arn:aws:secretsmanager:eu-west-1:111122223333:secret:exchanges/binance"} {
		got, err := r.GetSecretString(ctx, id)
		if err != nil || got != `{"api_key":"AK","secret":"S"}` {
			t.Errorf("GetSecretString(%s) = %q, %v", id, got, err)
		}
	}
	tests := []struct{ id, want string }{
		{"exchanges/missing", "ResourceNotFoundException"},
		{"exchanges/other", "AccessDeniedException"},
	}
	for _, tt := range tests {
		_, err := r.GetSecretString(ctx, tt.id)
		var e *awssm.Error
		if !errors.As(err, &e) || e.Type != tt.want {
			t.Errorf("GetSecretString(%s) = %v, want %s", tt.id, err, tt.want)
		}
	}
	stranger, err := awssm.New(ctx, awssm.Config{Region: "eu-west-1", Endpoint: f.URL, Credentials: creds("AKIASTRANGER")})
	if err != nil {
		t.Fatal(err)
	}
	_, err = stranger.GetSecretString(ctx, "exchanges/binance")
	if err == nil || !strings.Contains(err.Error(), "UnrecognizedClientException") || strings.Contains(err.Error(), "sm-secret-key-0001") {
		t.Errorf("GetSecretString with unknown credentials = %v", err)
	}
}
