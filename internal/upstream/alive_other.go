//go:build !(linux || darwin || freebsd || netbsd || openbsd)

package upstream

// alive cannot peek without blocking here; a closed connection is found when
// it is used.
func alive(cn *conn) bool { return cn.br.Buffered() == 0 }
