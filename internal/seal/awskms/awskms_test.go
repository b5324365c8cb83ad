package awskms_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"

	"github.com/keywarden/keywarden/internal/seal"
	"github.com/keywarden/keywarden/internal/seal/awskms"
	"github.com/keywarden/keywarden/internal/seal/awskms/awskmstest"
	"github.com/keywarden/keywarden/internal/vault"
	"github.com/keywarden/keywarden/internal/vault/sealtest"
)

const (
	accessKey = "AKIAFAKEKEYWARDEN01"
	secretKey = "fake-secret-access-key-do-not-log-0123"
)

func creds(akid string) aws.CredentialsProvider {
	return aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
		return aws.Credentials{AccessKeyID: akid, SecretAccessKey: secretKey, Source: "test"}, nil
	})
}

func isolate(t *testing.T) {
	t.Helper()
	// Keep the developer's own AWS configuration out of the tests.
	for _, v := range []string{"AWS_PROFILE", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_KMS"} {
		t.Setenv(v, "")
	}
	t.Setenv("AWS_CONFIG_FILE", os.DevNull)
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", os.DevNull)
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
}

func newSeal(t *testing.T, cfg awskms.Config) *awskms.Seal {
	t.Helper()
	s, err := awskms.New(context.Background(), cfg)
	if err != nil {
		t.Fatalf("awskms.New() = %v", err)
	}
	return s
}

func fakeConfig(f *awskmstest.Server, keyID string) awskms.Config {
	return awskms.Config{KeyID: keyID, Region: awskmstest.Region, Endpoint: f.URL, Credentials: creds(accessKey), MaxAttempts: 1}
}

func closedURL(t *testing.T) string {
	srv := httptest.NewServer(http.NotFoundHandler())
	u := srv.URL
	srv.Close()
	return u
}

func TestConformance(t *testing.T) {
	isolate(t)
	f := awskmstest.New(t)
	id, other := f.AddKey(), f.AddKey()
	f.Allow(accessKey, id, other)
	f.AddAlias("keywarden", id)
	for name, ref := range map[string]string{"key id": id, "arn": awskmstest.ARN(id), "alias": "alias/keywarden"} {
		t.Run(name, func(t *testing.T) {
			cfg := fakeConfig(f, ref)
			down := cfg
			down.Endpoint = closedURL(t)
			sealtest.Run(t, sealtest.Backend{
				Seal:        func(t *testing.T) vault.SealWrapper { return newSeal(t, cfg) },
				OtherKey:    func(t *testing.T) vault.SealWrapper { return newSeal(t, fakeConfig(f, other)) },
				Unavailable: func(t *testing.T) vault.SealWrapper { return newSeal(t, down) },
				Secrets:     []string{secretKey},
			})
		})
	}
	if f.Calls("GenerateDataKey") == 0 || f.Calls("Decrypt") == 0 {
		t.Errorf("the fake saw %d GenerateDataKey and %d Decrypt calls", f.Calls("GenerateDataKey"), f.Calls("Decrypt"))
	}
}

func TestErrors(t *testing.T) {
	isolate(t)
	f := awskmstest.New(t)
	id, denied, disabled := f.AddKey(), f.AddKey(), f.AddKey()
	f.Allow(accessKey, id, disabled)
	f.Disable(disabled)
	ctx := context.Background()

	tests := []struct {
		name string
		cfg  awskms.Config
		want string
		as   any
	}{
		{"unknown key", fakeConfig(f, "alias/missing"), "NotFoundException", new(*types.NotFoundException)},
		{"no permission", fakeConfig(f, denied), "AccessDeniedException", nil},
		{"disabled", fakeConfig(f, disabled), "DisabledException", new(*types.DisabledException)},
		{"unknown identity", awskms.Config{KeyID: id, Region: awskmstest.Region, Endpoint: f.URL, Credentials: creds("AKIAUNKNOWN"), MaxAttempts: 1}, "UnrecognizedClientException", nil},
	}
	for _, tt := range tests {
		_, err := newSeal(t, tt.cfg).Wrap(ctx, []byte("root"), []byte("aad"))
		if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), "awskms") {
			t.Errorf("%s: Wrap() = %v, want an awskms error with %s", tt.name, err, tt.want)
			continue
		}
		if tt.as != nil && !errors.As(err, tt.as) {
			t.Errorf("%s: Wrap() = %v, not the SDK's typed error", tt.name, err)
		}
		if strings.Contains(err.Error(), secretKey) {
			t.Errorf("%s: error holds the secret access key", tt.name)
		}
	}

	// A blob under id, unwrapped by a seal configured with another key, is
	// refused by KMS (IncorrectKeyException) before anything is decrypted.
	s := newSeal(t, fakeConfig(f, id))
	blob, err := s.Wrap(ctx, []byte("root"), []byte("aad"))
	if err != nil {
		t.Fatal(err)
	}
	f.Allow(accessKey, denied)
	_, err = newSeal(t, fakeConfig(f, denied)).Unwrap(ctx, blob, []byte("aad"))
	var ike *types.IncorrectKeyException
	if !errors.As(err, &ike) || !errors.Is(err, seal.ErrAuth) {
		t.Errorf("Unwrap under another key = %v, want IncorrectKeyException and seal.ErrAuth", err)
	}
	// Other additional data: KMS refuses the encryption context.
	_, err = s.Unwrap(ctx, blob, []byte("other"))
	var ice *types.InvalidCiphertextException
	if !errors.As(err, &ice) || !errors.Is(err, seal.ErrAuth) {
		t.Errorf("Unwrap with other aad = %v, want InvalidCiphertextException and seal.ErrAuth", err)
	}
}

func TestConfigChecks(t *testing.T) {
	isolate(t)
	t.Setenv("AWS_REGION", "")
	t.Setenv("AWS_DEFAULT_REGION", "")
	if _, err := awskms.New(context.Background(), awskms.Config{KeyID: "alias/k"}); err == nil || !strings.Contains(err.Error(), "region") {
		t.Errorf("New without a region = %v", err)
	}
	if _, err := awskms.New(context.Background(), awskms.Config{Region: "eu-west-1"}); err == nil {
		t.Error("New without a key id succeeded")
	}
	s := newSeal(t, awskms.Config{KeyID: "alias/k", Region: "eu-west-1"})
	if s.Type() != "awskms" || s.KeyID() != "alias/k" {
		t.Errorf("Type, KeyID = %s, %s", s.Type(), s.KeyID())
	}
}

// TestRealKMS runs the suite against AWS KMS when credentials are in the
// environment and KEYWARDEN_TEST_KMS_KEY names a symmetric key (and
// KEYWARDEN_TEST_KMS_OTHER_KEY, optionally, a second one).
func TestRealKMS(t *testing.T) {
	key := os.Getenv("KEYWARDEN_TEST_KMS_KEY")
	if key == "" || (os.Getenv("AWS_ACCESS_KEY_ID") == "" && os.Getenv("AWS_PROFILE") == "") {
		t.Skip("KEYWARDEN_TEST_KMS_KEY and AWS credentials are not set: no real KMS to test against")
	}
	other := os.Getenv("KEYWARDEN_TEST_KMS_OTHER_KEY")
	if other == "" {
		t.Skip("KEYWARDEN_TEST_KMS_OTHER_KEY is not set: the wrong-key case needs a second key")
	}
	cfg := awskms.Config{KeyID: key}
	down := cfg
	down.Endpoint, down.MaxAttempts = closedURL(t), 1
	sealtest.Run(t, sealtest.Backend{
		Seal:        func(t *testing.T) vault.SealWrapper { return newSeal(t, cfg) },
		OtherKey:    func(t *testing.T) vault.SealWrapper { return newSeal(t, awskms.Config{KeyID: other}) },
		Unavailable: func(t *testing.T) vault.SealWrapper { return newSeal(t, down) },
		Secrets:     []string{os.Getenv("AWS_SECRET_ACCESS_KEY"), os.Getenv("AWS_SESSION_TOKEN")},
	})
}
