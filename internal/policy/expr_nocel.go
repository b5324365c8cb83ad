//go:build !cel

package policy

import "errors"

// compileExpr refuses expressions in builds without CEL, so a policy that
// relies on one fails at load instead of running without it.
func compileExpr(src string) (exprProgram, error) { return compileExprLimit(src, exprCostLimit) }

func compileExprLimit(string, uint64) (exprProgram, error) {
	return nil, errors.New("this keywarden build has no CEL support (build with -tags cel)")
}
