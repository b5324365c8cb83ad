package transit

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
)

// KV reads secrets from a KV version 2 secrets engine, with the same
// client, TLS settings and authentication as the transit seal (Config's
// Mount and Key are ignored).
type KV struct{ s *Seal }

// NewKV checks cfg and returns a KV reader. It does not contact the
// server.
func NewKV(cfg Config) (*KV, error) {
	s, err := newSeal(cfg, false)
	if err != nil {
		return nil, err
	}
	return &KV{s: s}, nil
}

// Close forgets the token.
func (k *KV) Close() { k.s.Close() }

// Read returns the latest version of the secret at mount/path
// (GET /v1/<mount>/data/<path>). Every value must be a string. The caller
// must not log the values.
func (k *KV) Read(ctx context.Context, mount, path string) (map[string]string, error) {
	mount, path = strings.Trim(mount, "/"), strings.Trim(path, "/")
	if !validPath(mount) || !validPath(path) {
		return nil, errors.New("kv: mount and path are required, without .., ? or #")
	}
	var resp struct {
		Data *struct {
			Data map[string]any `json:"data"`
		} `json:"data"`
	}
	where := fmt.Sprintf("kv %s/%s at %s", mount, path, k.s.base.Redacted())
	if err := k.s.call(ctx, http.MethodGet, mount+"/data/"+path, nil, &resp); err != nil {
		var se *StatusError
		if errors.As(err, &se) && se.Code == http.StatusNotFound {
			return nil, fmt.Errorf("%s: no such secret (or it was deleted)", where)
		}
		return nil, fmt.Errorf("%s: %w", where, err)
	}
	if resp.Data == nil || resp.Data.Data == nil {
		return nil, fmt.Errorf("%s: no data (deleted or destroyed version?)", where)
	}
	out := make(map[string]string, len(resp.Data.Data))
	for name, v := range resp.Data.Data {
		str, ok := v.(string)
		if !ok {
			return nil, fmt.Errorf("%s: field %q is not a string", where, name)
		}
		out[name] = str
	}
	return out, nil
}
