//go:build !cel

package policy

import "errors"

// compileExpr refuses expressions in builds without CEL, so a policy that
// relies on one fails at load instead of running without it.
func compileExpr(string) (exprProgram, error) {
	return nil, errors.New("this keywarden build has no CEL support (build with -tags cel)")
}
