package policy

import (
	"errors"
	"fmt"
	"sync"

	"github.com/google/cel-go/cel"
	"github.com/google/cel-go/checker"
	"github.com/google/cel-go/common/types"
	"github.com/google/cel-go/interpreter"
)

// celEnv is built once: an Env is immutable and safe for concurrent use,
// and building it costs far more than compiling an expression.
var celEnv = sync.OnceValues(func() (*cel.Env, error) {
	return cel.NewEnv(
		cel.Variable("call", cel.MapType(cel.StringType, cel.DynType)),
		cel.Variable("client", cel.StringType),
		cel.Variable("key", cel.StringType),
		cel.Variable("ip", cel.StringType),
		cel.Variable("hour", cel.IntType),
		cel.Variable("weekday", cel.IntType),
		cel.Variable("now", cel.TimestampType),
	)
})

// celProgram holds an expression compiled twice: tracked counts the cost
// of every step and stops at the limit; fast, when set, skips that
// bookkeeping because the expression's static worst-case cost is within
// the limit for any input within the size hints (see exprSizeHint). fast
// runs only on inputs that fit the hints.
type celProgram struct{ tracked, fast cel.Program }

// sizeHints bounds the size of every value whose size CEL cannot know
// (strings, the orders list, maps) by exprSizeHint, for static cost
// estimation.
type sizeHints struct{}

func (sizeHints) EstimateSize(checker.AstNode) *checker.SizeEstimate {
	return &checker.SizeEstimate{Min: 0, Max: exprSizeHint}
}

func (sizeHints) EstimateCallCost(string, string, *checker.AstNode, []checker.AstNode) *checker.CallEstimate {
	return nil
}

func compileExpr(src string) (exprProgram, error) { return compileExprLimit(src, exprCostLimit) }

func compileExprLimit(src string, limit uint64) (exprProgram, error) {
	env, err := celEnv()
	if err != nil {
		return nil, err
	}
	if src == "" {
		return nil, errors.New("empty expression")
	}
	ast, iss := env.Compile(src)
	if iss.Err() != nil {
		return nil, iss.Err()
	}
	if !ast.OutputType().IsExactType(cel.BoolType) {
		return nil, fmt.Errorf("must return bool, not %s", ast.OutputType())
	}
	prg, err := env.Program(ast, cel.CostLimit(limit), cel.EvalOptions(cel.OptOptimize))
	if err != nil {
		return nil, err
	}
	out := celProgram{tracked: prg}
	if est, err := env.EstimateCost(ast, sizeHints{}); err == nil && est.Max <= limit {
		if out.fast, err = env.Program(ast, cel.EvalOptions(cel.OptOptimize)); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func (c celProgram) bounded() bool { return c.fast != nil }

func (c celProgram) eval(v *exprVars) (bool, error) {
	prg := c.tracked
	if c.fast != nil && v.fitsSizeHint() {
		prg = c.fast
	}
	out, _, err := prg.Eval(celVars{v})
	if err != nil {
		return false, err
	}
	return out == types.True, nil
}

// celVars adapts exprVars to CEL's Activation.
type celVars struct{ v *exprVars }

var _ interpreter.Activation = celVars{}

func (a celVars) ResolveName(name string) (any, bool) { return a.v.resolve(name) }
func (a celVars) Parent() interpreter.Activation      { return nil }
