package main

import (
	"strings"
	"testing"
	"time"
)

func TestGatewayLimits(t *testing.T) {
	tests := []struct {
		name string
		g    GatewayConfig
		want gatewayLimits
		err  string
	}{
		{"defaults", GatewayConfig{}, gatewayLimits{64 << 10, 16 << 10, 8 << 10, 24 * time.Hour}, ""},
		{"set", GatewayConfig{MaxBody: 4096, MaxHeaderBytes: 32 << 10, MaxURI: 2048, IdempotencyWindow: "1h"},
			gatewayLimits{4096, 32 << 10, 2048, time.Hour}, ""},
		{"off", GatewayConfig{IdempotencyWindow: "off"}, gatewayLimits{64 << 10, 16 << 10, 8 << 10, -1}, ""},
		{"header too small", GatewayConfig{MaxHeaderBytes: 4096}, gatewayLimits{}, "max_header_bytes"},
		{"body too large", GatewayConfig{MaxBody: 1 << 30}, gatewayLimits{}, "max_body"},
		{"uri too small", GatewayConfig{MaxURI: 10}, gatewayLimits{}, "max_uri"},
		{"bad window", GatewayConfig{IdempotencyWindow: "forever"}, gatewayLimits{}, "idempotency_window"},
		{"window too long", GatewayConfig{IdempotencyWindow: "720h"}, gatewayLimits{}, "idempotency_window"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.g.limits()
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("limits() error = %v, want one naming %s", err, tt.err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("limits() = %+v, %v; want %+v", got, err, tt.want)
			}
		})
	}
	if got := (gatewayLimits{maxHeader: 16 << 10}).serverMaxHeaderBytes(); got != 12<<10 {
		t.Errorf("server MaxHeaderBytes = %d, want 12288 (net/http adds 4 KiB)", got)
	}
}
