package bybit

import "github.com/keywarden/keywarden/internal/exchange"

// maxDepth bounds JSON nesting; no Bybit request nests deeper than a few levels.
const maxDepth = 16

// maxPath bounds the length of a request path.
const maxPath = 256

func badRequest(format string, args ...any) *exchange.Error {
	return exchange.Errorf(exchange.ErrBadRequest, format, args...)
}

// The strict readers are exchange's (see strictvenue.go there), bound to
// this venue's limits.

func canonicalPath(p string) (string, error) { return exchange.CanonicalPath(p, maxPath) }

func parseJSON(body []byte) (any, error) { return exchange.ParseJSONBody(body, maxDepth) }

type (
	fields    = exchange.FieldReader
	objFields = exchange.ObjFields
)
type queryFields = exchange.QueryFields

var (
	decimal    = exchange.Decimal
	num        = exchange.Num
	getStrings = exchange.GetStrings
)
