//go:build !cel

package policy

import (
	"strings"
	"testing"
)

func TestExpressionsNeedCEL(t *testing.T) {
	_, err := Compile("bot", Definition{Expressions: []ExprDef{{Name: "rule", Expr: "true"}}})
	if err == nil || !strings.Contains(err.Error(), "expressions[0] (rule).expr: this keywarden build has no CEL support") {
		t.Errorf("Compile() = %v, want expressions refused without CEL", err)
	}
}
