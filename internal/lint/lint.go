// Package lint is keywarden's secret-hygiene and constant-time lint
// (security.md H4 and H5). It type-checks the module's non-test Go files and
// reports:
//
//   - H4-string: string(x) where x holds secret bytes: a value of a secret
//     type, a secret field (see below), or the Bytes() of a memguard buffer.
//     A Go string cannot be wiped and is copied freely.
//   - H4-format: a secret-carrying value passed to fmt's printing functions
//     (%v, %+v, %s, ... and Print/Println) or to log/slog, when its type does
//     not redact itself: for fmt it must implement fmt.Stringer or
//     fmt.Formatter; for slog it must implement
//     slog.LogValuer (slog's JSON handler ignores String).
//   - H4-env: os.Getenv or os.LookupEnv, or any function, method or func
//     value named getenv or lookupenv (any case), called with a constant
//     name that looks like a secret (SECRET, PASSPHRASE, PASSWORD, TOKEN,
//     PRIVATE_KEY, API_KEY, SEED, SHARE) and does not end in _FILE (a path
//     to a secret). Secrets come from files or the terminal, never the
//     environment (/proc/<pid>/environ).
//   - H4-tls: InsecureSkipVerify set to anything but the constant false.
//   - H5-compare: bytes.Equal, bytes.Compare, == or != on strings, byte
//     slices or byte arrays when an operand is named like a MAC, signature,
//     digest, token or hash (a camel-case or snake-case word mac, hmac, sig,
//     signature, digest, token or hash) and neither operand is a constant:
//     use hmac.Equal or subtle.ConstantTimeCompare.
//
// Secret types. A type is secret-carrying when it is
//
//   - exchange.Secret, memguard.LockedBuffer or memguard.Enclave;
//   - a struct with a field of a secret-carrying type, or with a []byte,
//     [][]byte or string field named (case-insensitively) Secret,
//     Passphrase, Password, Seed, Share, Shares, PrivateKey, RootKey,
//     UnsealKey or TOTPSeed: such a field is a secret field;
//   - a pointer to, slice, array or map of a secret-carrying type.
//
// Findings are suppressed by a comment on the finding's line or the line
// above it, "//keywarden:allow RULE reason" (the reason is required), or by
// an entry in Allowed, for existing code that the lint does not own.
// Test files are not checked.
package lint

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"go/ast"
	"go/importer"
	"go/parser"
	"go/token"
	"go/types"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"unicode"
)

// Finding is one violation.
type Finding struct {
	Pos  token.Position
	Rule string
	// Func is the enclosing function ("Type.Method", "func" or "" at
	// package level), which Allowed entries match.
	Func string
	Msg  string
}

func (f Finding) String() string {
	return fmt.Sprintf("%s: %s: %s", f.Pos, f.Rule, f.Msg)
}

// pkg is what go list says about a package.
type pkg struct {
	ImportPath string
	Dir        string
	GoFiles    []string
	Export     string
	DepOnly    bool
	Standard   bool
	Module     *struct{ Path string }
	Error      *struct{ Err string }
}

// Run checks the packages patterns match (go list patterns, relative to
// dir) and returns every finding not suppressed by a comment, with file
// names relative to dir. It needs the go command: the packages'
// dependencies are read from their compiled export data.
func Run(dir string, patterns ...string) ([]Finding, error) {
	args := append([]string{"list", "-e", "-export", "-deps", "-json=ImportPath,Dir,GoFiles,Export,DepOnly,Standard,Module,Error"}, patterns...)
	cmd := exec.Command("go", args...)
	cmd.Dir = dir
	var out, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("go list: %v: %s", err, stderr.String())
	}
	exports := map[string]string{}
	var targets []pkg
	dec := json.NewDecoder(&out)
	for {
		var p pkg
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			return nil, fmt.Errorf("go list output: %w", err)
		}
		if p.Export != "" {
			exports[p.ImportPath] = p.Export
		}
		if !p.DepOnly && !p.Standard {
			targets = append(targets, p)
		}
	}
	fset := token.NewFileSet()
	imp := importer.ForCompiler(fset, "gc", func(path string) (io.ReadCloser, error) {
		f, ok := exports[path]
		if !ok {
			return nil, fmt.Errorf("no export data for %s", path)
		}
		return os.Open(f)
	})
	absDir, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	var all []Finding
	for _, p := range targets {
		if p.Error != nil {
			return nil, fmt.Errorf("package %s: %s", p.ImportPath, p.Error.Err)
		}
		fs, err := checkPackage(fset, imp, p)
		if err != nil {
			return nil, err
		}
		for _, f := range fs {
			if rel, err := filepath.Rel(absDir, f.Pos.Filename); err == nil {
				f.Pos.Filename = filepath.ToSlash(rel)
			}
			all = append(all, f)
		}
	}
	sort.Slice(all, func(i, j int) bool {
		a, b := all[i].Pos, all[j].Pos
		if a.Filename != b.Filename {
			return a.Filename < b.Filename
		}
		return a.Line < b.Line
	})
	return all, nil
}

func checkPackage(fset *token.FileSet, imp types.Importer, p pkg) ([]Finding, error) {
	var files []*ast.File
	for _, name := range p.GoFiles {
		f, err := parser.ParseFile(fset, filepath.Join(p.Dir, name), nil, parser.ParseComments)
		if err != nil {
			return nil, err
		}
		files = append(files, f)
	}
	info := &types.Info{
		Types:      map[ast.Expr]types.TypeAndValue{},
		Uses:       map[*ast.Ident]types.Object{},
		Defs:       map[*ast.Ident]types.Object{},
		Selections: map[*ast.SelectorExpr]*types.Selection{},
	}
	conf := types.Config{Importer: imp, Error: func(error) {}}
	if _, err := conf.Check(p.ImportPath, fset, files, info); err != nil {
		return nil, fmt.Errorf("type-check %s: %w", p.ImportPath, err)
	}
	c := &checker{fset: fset, info: info, secret: map[types.Type]bool{}}
	for _, f := range files {
		c.file(f)
	}
	return c.out, nil
}

type checker struct {
	fset   *token.FileSet
	info   *types.Info
	secret map[types.Type]bool // memo for isSecret
	out    []Finding

	allowed map[int][]string // line → rules allowed by comments, current file
	fn      string
}

var allowRE = regexp.MustCompile(`^//\s*keywarden:allow\s+(H[0-9]+-[a-z]+)\s+\S`)

func (c *checker) file(f *ast.File) {
	c.allowed = map[int][]string{}
	for _, g := range f.Comments {
		for _, cm := range g.List {
			if m := allowRE.FindStringSubmatch(cm.Text); m != nil {
				line := c.fset.Position(cm.Pos()).Line
				c.allowed[line] = append(c.allowed[line], m[1])
				c.allowed[line+1] = append(c.allowed[line+1], m[1])
			}
		}
	}
	for _, d := range f.Decls {
		c.fn = ""
		if fd, ok := d.(*ast.FuncDecl); ok {
			c.fn = fd.Name.Name
			if fd.Recv != nil && len(fd.Recv.List) == 1 {
				c.fn = recvName(fd.Recv.List[0].Type) + "." + c.fn
			}
		}
		ast.Inspect(d, c.node)
	}
}

func recvName(e ast.Expr) string {
	switch t := e.(type) {
	case *ast.StarExpr:
		return recvName(t.X)
	case *ast.IndexExpr:
		return recvName(t.X)
	case *ast.IndexListExpr:
		return recvName(t.X)
	case *ast.Ident:
		return t.Name
	}
	return "?"
}

func (c *checker) report(n ast.Node, rule, format string, args ...any) {
	pos := c.fset.Position(n.Pos())
	for _, r := range c.allowed[pos.Line] {
		if r == rule {
			return
		}
	}
	c.out = append(c.out, Finding{Pos: pos, Rule: rule, Func: c.fn, Msg: fmt.Sprintf(format, args...)})
}

func (c *checker) node(n ast.Node) bool {
	switch n := n.(type) {
	case *ast.CallExpr:
		c.call(n)
	case *ast.BinaryExpr:
		if n.Op == token.EQL || n.Op == token.NEQ {
			c.compare(n, n.X, n.Y, n.Op.String())
		}
	case *ast.KeyValueExpr:
		if id, ok := n.Key.(*ast.Ident); ok && id.Name == "InsecureSkipVerify" && !c.isFalse(n.Value) {
			c.report(n, "H4-tls", "InsecureSkipVerify is set: TLS certificates must be verified")
		}
	case *ast.AssignStmt:
		for i, l := range n.Lhs {
			if s, ok := l.(*ast.SelectorExpr); ok && s.Sel.Name == "InsecureSkipVerify" && i < len(n.Rhs) && !c.isFalse(n.Rhs[i]) {
				c.report(n, "H4-tls", "InsecureSkipVerify is set: TLS certificates must be verified")
			}
		}
	}
	return true
}

func (c *checker) isFalse(e ast.Expr) bool {
	tv, ok := c.info.Types[e]
	return ok && tv.Value != nil && tv.Value.String() == "false"
}

// calleeName is the called function's, method's or func value's name.
func calleeName(call *ast.CallExpr) string {
	switch f := ast.Unparen(call.Fun).(type) {
	case *ast.Ident:
		return f.Name
	case *ast.SelectorExpr:
		return f.Sel.Name
	}
	return ""
}

// funcOf returns the package path and name of a called function or method
// ("" when it is neither), and the receiver's named type for methods.
func (c *checker) funcOf(call *ast.CallExpr) (pkgPath, name, recv string) {
	var id *ast.Ident
	switch f := ast.Unparen(call.Fun).(type) {
	case *ast.Ident:
		id = f
	case *ast.SelectorExpr:
		id = f.Sel
	default:
		return "", "", ""
	}
	fn, ok := c.info.Uses[id].(*types.Func)
	if !ok || fn.Pkg() == nil {
		return "", "", ""
	}
	if sig, ok := fn.Type().(*types.Signature); ok && sig.Recv() != nil {
		t := sig.Recv().Type()
		if p, ok := t.(*types.Pointer); ok {
			t = p.Elem()
		}
		if n, ok := t.(*types.Named); ok {
			recv = n.Obj().Name()
		}
	}
	return fn.Pkg().Path(), fn.Name(), recv
}

func (c *checker) call(call *ast.CallExpr) {
	// string(x)
	if tv, ok := c.info.Types[call.Fun]; ok && tv.IsType() && len(call.Args) == 1 {
		if b, ok := tv.Type.Underlying().(*types.Basic); ok && b.Kind() == types.String {
			if why := c.secretBytes(call.Args[0]); why != "" {
				c.report(call, "H4-string", "string(%s) copies %s into a string that cannot be wiped", exprString(call.Args[0]), why)
			}
		}
		return
	}
	if callee := calleeName(call); (strings.EqualFold(callee, "getenv") || strings.EqualFold(callee, "lookupenv")) && len(call.Args) == 1 {
		if tv, ok := c.info.Types[call.Args[0]]; ok && tv.Value != nil {
			if v := constant(tv.Value.ExactString()); secretEnvRE.MatchString(v) && !strings.HasSuffix(strings.ToUpper(v), "_FILE") {
				c.report(call, "H4-env", "%s(%q): secrets are read from files or the terminal, never the environment", callee, v)
			}
		}
		return
	}
	path, name, recv := c.funcOf(call)
	switch {
	case path == "bytes" && (name == "Equal" || name == "Compare") && len(call.Args) == 2:
		c.compare(call, call.Args[0], call.Args[1], "bytes."+name)
	case path == "fmt" || (path == "log" && recv == "" || path == "log" && recv == "Logger"):
		c.printCall(call, name)
	case path == "log/slog":
		c.slogCall(call, name, recv)
	}
}

var secretEnvRE = regexp.MustCompile(`(?i)(SECRET|PASSPHRASE|PASSWORD|PASSWD|TOKEN|PRIVATE_?KEY|API_?KEY|SEED|SHARE)`)

func constant(s string) string {
	if u, err := strconv.Unquote(s); err == nil {
		return u
	}
	return s
}

// printCall checks fmt and log printing calls.
func (c *checker) printCall(call *ast.CallExpr, name string) {
	printing := name == "Errorf"
	for _, p := range []string{"Print", "Sprint", "Fprint", "Append", "Fatal", "Panic"} {
		printing = printing || strings.HasPrefix(name, p)
	}
	if !printing {
		return // Sscanf and the like read into their operands
	}
	formatted := strings.HasSuffix(name, "f")
	args := call.Args
	if strings.HasPrefix(name, "Fprint") || strings.HasPrefix(name, "Append") {
		if len(args) == 0 {
			return
		}
		args = args[1:]
	}
	if formatted {
		if len(args) == 0 {
			return
		}
		args = args[1:] // every verb prints its operand through Stringer or the raw value
	}
	for _, a := range args {
		t := c.info.TypeOf(a)
		if t == nil || !c.isSecret(t) || redactsForFmt(t) {
			continue
		}
		c.report(a, "H4-format", "%s printed by fmt.%s: %s carries a secret and does not redact itself (String or Format)", exprString(a), name, t)
	}
}

// slogCall checks log/slog calls: every argument after the message, and
// slog.Any/Group values.
func (c *checker) slogCall(call *ast.CallExpr, name, recv string) {
	var args []ast.Expr
	switch {
	case recv == "" && (name == "Any" || name == "Group"):
		if len(call.Args) > 1 {
			args = call.Args[1:]
		}
	case recv == "" && (name == "Debug" || name == "Info" || name == "Warn" || name == "Error"),
		recv == "Logger" && (name == "Debug" || name == "Info" || name == "Warn" || name == "Error"):
		if len(call.Args) > 1 {
			args = call.Args[1:]
		}
	case name == "DebugContext" || name == "InfoContext" || name == "WarnContext" || name == "ErrorContext":
		if len(call.Args) > 2 {
			args = call.Args[2:]
		}
	case name == "Log" || name == "LogAttrs":
		if len(call.Args) > 3 {
			args = call.Args[3:]
		}
	case name == "With":
		args = call.Args
	}
	for _, a := range args {
		t := c.info.TypeOf(a)
		if t == nil || !c.isSecret(t) || redactsForSlog(t) {
			continue
		}
		c.report(a, "H4-format", "%s logged by slog: %s carries a secret and does not implement slog.LogValuer", exprString(a), t)
	}
}

func hasMethod(t types.Type, name string) bool {
	ms := types.NewMethodSet(t)
	for i := range ms.Len() {
		if ms.At(i).Obj().Name() == name {
			return true
		}
	}
	return false
}

func redactsForFmt(t types.Type) bool {
	return hasMethod(t, "String") || hasMethod(t, "Format")
}

func redactsForSlog(t types.Type) bool { return hasMethod(t, "LogValue") }

// Named secret types, by package path and name.
var secretNamed = map[string]bool{
	"github.com/keywarden/keywarden/internal/exchange.Secret": true,
	"github.com/awnumar/memguard.LockedBuffer":                true,
	"github.com/awnumar/memguard.Enclave":                     true,
}

// secretFieldNames are the []byte, [][]byte or string fields that hold
// secret material, lower-cased.
var secretFieldNames = map[string]bool{
	"secret": true, "passphrase": true, "password": true, "seed": true, "share": true, "shares": true,
	"privatekey": true, "rootkey": true, "unsealkey": true, "totpseed": true,
}

func namedKey(n *types.Named) string {
	if n.Obj().Pkg() == nil {
		return n.Obj().Name()
	}
	return n.Obj().Pkg().Path() + "." + n.Obj().Name()
}

// isSecret reports whether t is secret-carrying (see the package doc).
func (c *checker) isSecret(t types.Type) bool {
	if v, ok := c.secret[t]; ok {
		return v
	}
	c.secret[t] = false // cycles: assume not while deciding
	v := c.decideSecret(t)
	c.secret[t] = v
	return v
}

func (c *checker) decideSecret(t types.Type) bool {
	switch t := t.(type) {
	case *types.Named:
		if secretNamed[namedKey(t)] {
			return true
		}
		return c.isSecret(t.Underlying())
	case *types.Alias:
		return c.isSecret(types.Unalias(t))
	case *types.Pointer:
		return c.isSecret(t.Elem())
	case *types.Slice:
		return c.isSecret(t.Elem())
	case *types.Array:
		return c.isSecret(t.Elem())
	case *types.Map:
		return c.isSecret(t.Key()) || c.isSecret(t.Elem())
	case *types.Struct:
		for i := range t.NumFields() {
			f := t.Field(i)
			if c.isSecret(f.Type()) || isSecretField(f) {
				return true
			}
		}
	}
	return false
}

// isSecretField reports whether f is a secret field by name and type.
func isSecretField(f *types.Var) bool {
	if !secretFieldNames[strings.ToLower(f.Name())] {
		return false
	}
	switch u := f.Type().Underlying().(type) {
	case *types.Basic:
		return u.Kind() == types.String
	case *types.Slice:
		if isByteSlice(u) {
			return true
		}
		if inner, ok := u.Elem().Underlying().(*types.Slice); ok {
			return isByteSlice(inner)
		}
	}
	return false
}

func isByteSlice(t types.Type) bool {
	s, ok := t.Underlying().(*types.Slice)
	if !ok {
		return false
	}
	b, ok := s.Elem().Underlying().(*types.Basic)
	return ok && b.Kind() == types.Byte
}

// secretBytes says why e holds secret bytes, or "".
func (c *checker) secretBytes(e ast.Expr) string {
	e = ast.Unparen(e)
	t := c.info.TypeOf(e)
	if t == nil {
		return ""
	}
	if n, ok := types.Unalias(t).(*types.Named); ok && secretNamed[namedKey(n)] {
		return "a " + n.Obj().Name()
	}
	switch e := e.(type) {
	case *ast.SelectorExpr:
		if sel, ok := c.info.Selections[e]; ok && sel.Kind() == types.FieldVal {
			if v, ok := sel.Obj().(*types.Var); ok && isSecretField(v) {
				return "the secret field " + v.Name()
			}
		}
	case *ast.CallExpr:
		if path, name, recv := c.funcOf(e); path == "github.com/awnumar/memguard" && name == "Bytes" && recv == "LockedBuffer" {
			return "a memguard buffer"
		}
	case *ast.SliceExpr:
		return c.secretBytes(e.X)
	}
	return ""
}

// compareWords are the name words H5 looks for.
var compareWords = map[string]bool{"mac": true, "hmac": true, "sig": true, "signature": true, "digest": true, "token": true, "hash": true}

// compare checks one comparison of a and b.
func (c *checker) compare(n ast.Node, a, b ast.Expr, op string) {
	for _, e := range []ast.Expr{a, b} {
		tv, ok := c.info.Types[e]
		if !ok || tv.Value != nil || tv.IsNil() || !comparableBytes(tv.Type) {
			return
		}
	}
	for _, e := range []ast.Expr{a, b} {
		if w := nameWord(exprName(e)); w != "" {
			c.report(n, "H5-compare", "%s compares %s (a %s) in variable time: use hmac.Equal or subtle.ConstantTimeCompare", op, exprString(e), w)
			return
		}
	}
}

func comparableBytes(t types.Type) bool {
	if t == nil {
		return false
	}
	switch u := t.Underlying().(type) {
	case *types.Basic:
		return u.Kind() == types.String || u.Kind() == types.UntypedString
	case *types.Slice:
		return isByteSlice(u)
	case *types.Array:
		b, ok := u.Elem().Underlying().(*types.Basic)
		return ok && b.Kind() == types.Byte
	}
	return false
}

// exprName is the name an expression goes by: a variable or field name, a
// called function's name, or the converted operand's.
func exprName(e ast.Expr) string {
	switch e := ast.Unparen(e).(type) {
	case *ast.Ident:
		return e.Name
	case *ast.SelectorExpr:
		return e.Sel.Name
	case *ast.IndexExpr:
		return exprName(e.X)
	case *ast.SliceExpr:
		return exprName(e.X)
	case *ast.StarExpr:
		return exprName(e.X)
	case *ast.CallExpr:
		if len(e.Args) == 1 {
			if id, ok := e.Fun.(*ast.Ident); ok && (id.Name == "string" || id.Name == "byte") {
				return exprName(e.Args[0])
			}
			if at, ok := e.Fun.(*ast.ArrayType); ok && at.Len == nil {
				return exprName(e.Args[0])
			}
		}
		return exprName(e.Fun)
	}
	return ""
}

// nameWord returns the first camel- or snake-case word of name that is in
// compareWords, or "".
func nameWord(name string) string {
	var words []string
	var cur []rune
	rs := []rune(name)
	flush := func() {
		if len(cur) > 0 {
			words = append(words, strings.ToLower(string(cur)))
			cur = cur[:0]
		}
	}
	for i, r := range rs {
		switch {
		case r == '_' || unicode.IsDigit(r):
			flush()
		case unicode.IsUpper(r):
			// A new word starts at an upper-case letter that follows a
			// lower-case one, or that precedes a lower-case one in a run
			// of capitals (HMACKey → HMAC, Key).
			if i > 0 && (unicode.IsLower(rs[i-1]) || i+1 < len(rs) && unicode.IsLower(rs[i+1]) && unicode.IsUpper(rs[i-1])) {
				flush()
			}
			cur = append(cur, r)
		default:
			cur = append(cur, r)
		}
	}
	flush()
	for _, w := range words {
		if compareWords[w] {
			return w
		}
	}
	return ""
}

func exprString(e ast.Expr) string {
	var b bytes.Buffer
	writeExpr(&b, e)
	s := b.String()
	if len(s) > 60 {
		s = s[:57] + "..."
	}
	return s
}

func writeExpr(b *bytes.Buffer, e ast.Expr) {
	switch e := e.(type) {
	case *ast.Ident:
		b.WriteString(e.Name)
	case *ast.SelectorExpr:
		writeExpr(b, e.X)
		b.WriteByte('.')
		b.WriteString(e.Sel.Name)
	case *ast.CallExpr:
		writeExpr(b, e.Fun)
		b.WriteString("(...)")
	case *ast.ParenExpr:
		writeExpr(b, e.X)
	case *ast.StarExpr:
		b.WriteByte('*')
		writeExpr(b, e.X)
	case *ast.IndexExpr:
		writeExpr(b, e.X)
		b.WriteString("[...]")
	case *ast.SliceExpr:
		writeExpr(b, e.X)
		b.WriteString("[:]")
	case *ast.UnaryExpr:
		b.WriteString(e.Op.String())
		writeExpr(b, e.X)
	case *ast.BasicLit:
		b.WriteString(e.Value)
	default:
		b.WriteString("expr")
	}
}
