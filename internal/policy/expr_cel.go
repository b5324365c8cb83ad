//go:build cel

package policy

import (
	"errors"
	"fmt"
	"sync"

	"github.com/google/cel-go/cel"
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

type celProgram struct{ prg cel.Program }

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
	return celProgram{prg}, nil
}

func (c celProgram) eval(v *exprVars) (bool, error) {
	out, _, err := c.prg.Eval(celVars{v})
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
