package krakenfutures

import (
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/keywarden/keywarden/internal/exchange"
)

func TestWriteErrorKeepsWholeDenial(t *testing.T) {
	reason := "keywarden policy denied (rule max_order_notional): order notional 5000 USD is above the policy's cap of 1000 USD"
	tests := []struct {
		name, msg, want, not string
	}{
		{"whole reason", reason, reason, ""},
		{"control characters", "bad\nname\x00here", "bad?name?here", "\\n"},
		{"bounded", strings.Repeat("x", 2000), strings.Repeat("x", 512), strings.Repeat("x", 513)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := httptest.NewRecorder()
			errorWriter{}.WriteError(w, &exchange.Error{Kind: exchange.ErrPermission, Message: tt.msg})
			body := w.Body.String()
			if !strings.Contains(body, tt.want) {
				t.Errorf("WriteError(%q) body = %s, want it to contain %q", tt.msg, body, tt.want)
			}
			if tt.not != "" && strings.Contains(body, tt.not) {
				t.Errorf("WriteError(%q) body = %s, want no %q", tt.msg, body, tt.not)
			}
		})
	}
}
