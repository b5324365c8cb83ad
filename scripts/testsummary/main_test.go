package main

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestCategory(t *testing.T) {
	tests := []struct{ pkg, name, want string }{
		{"p", "TestHostileRequests/A12/absolute-form_metadata_address", "A"},
		{"p", "TestHostileRequests", "A"},
		{"p", "TestFault_F3_TrickledBody", "F"},
		{"p", "TestFault_F1_Venue5xx/Bad_Gateway", "F"},
		{"p", "TestCrash_C1_KillUnderLoad", "C"},
		{"p", "TestLoad_L4_CapsUnderConcurrency", "L"},
		{"p", "FuzzDescribe", "Z"},
		{"p", "FuzzDescribe/seed#0", "Z"},
		{"p", "TestVerifyTamper/byte_edit", "G"},
		{"p", "TestVault_V2_Shamir", "V"},
		{"p", "TestHygiene_H3_CoreDumpsOff", "H"},
		{"p", "TestForwardSignedOrder", "other"},
		{"p", "TestAPIKey", "other"},
		{"p", "TestF1Score", "other"},
		{"github.com/keywarden/keywarden/internal/shamir", "TestEverySubsetRebuilds", "V"},
		{"github.com/keywarden/keywarden/internal/vault", "FuzzOpenRecord/seed#1", "Z"},
		{"github.com/keywarden/keywarden/internal/vault", "TestTamperedRecords/moved_to_another_row", "V"},
	}
	for _, tt := range tests {
		if got := category(tt.pkg, tt.name); got != tt.want {
			t.Errorf("category(%q, %q) = %q, want %q", tt.pkg, tt.name, got, tt.want)
		}
	}
}

const stream = `{"Action":"run","Package":"p","Test":"TestHostileRequests"}
{"Action":"run","Package":"p","Test":"TestHostileRequests/A1/no_credential"}
{"Action":"pass","Package":"p","Test":"TestHostileRequests/A1/no_credential"}
{"Action":"run","Package":"p","Test":"TestHostileRequests/A2/bad_prefix"}
{"Action":"output","Package":"p","Test":"TestHostileRequests/A2/bad_prefix","Output":"    hostile_test.go:9: status 200, want 401\n"}
{"Action":"fail","Package":"p","Test":"TestHostileRequests/A2/bad_prefix"}
{"Action":"fail","Package":"p","Test":"TestHostileRequests"}
{"Action":"run","Package":"p","Test":"TestFault_F2_VenueHangs"}
{"Action":"output","Package":"p","Test":"TestFault_F2_VenueHangs","Output":"noise that is not printed on success\n"}
{"Action":"pass","Package":"p","Test":"TestFault_F2_VenueHangs"}
{"Action":"run","Package":"p","Test":"TestOther"}
{"Action":"skip","Package":"p","Test":"TestOther"}
not json at all
{"Action":"fail","Package":"p"}
{"Action":"pass","Package":"q"}
`

func TestRun(t *testing.T) {
	var out strings.Builder
	failed, err := run(strings.NewReader(stream), &out)
	if err != nil {
		t.Fatal(err)
	}
	if !failed {
		t.Error("run reported no failure for a stream with a failed test")
	}
	got := out.String()
	for _, want := range []string{
		"--- FAIL p TestHostileRequests/A2/bad_prefix\n    hostile_test.go:9: status 200, want 401\n",
		"not json at all\n",
		"--- FAIL package p\n",
		"A              1       1       0\n",
		"F              1       0       0\n",
		"other          0       0       1\n",
		"total          2       1       1\n",
		"  p TestHostileRequests/A2/bad_prefix\n",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("output lacks %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "noise that is not printed") {
		t.Error("output of a passing test was printed")
	}
	if strings.Contains(got, "--- FAIL p TestHostileRequests\n") {
		t.Error("a parent test's failure was printed besides its failed subtest")
	}
}

func TestRunAllPass(t *testing.T) {
	var out strings.Builder
	failed, err := run(strings.NewReader(`{"Action":"run","Package":"p","Test":"FuzzX"}
{"Action":"pass","Package":"p","Test":"FuzzX"}
{"Action":"pass","Package":"p"}
`), &out)
	if err != nil || failed {
		t.Fatalf("run = %v, %v; want no failure", failed, err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if diff := cmp.Diff("Z              1       0       0", lines[5]); diff != "" {
		t.Errorf("Z row (-want +got):\n%s", diff)
	}
}
