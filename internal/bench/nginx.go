package bench

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// ErrNoNginx is returned when the nginx path is wanted and no nginx binary
// is installed.
var ErrNoNginx = errors.New("bench: nginx not found; install it with `apt-get install nginx-light`, or leave the nginx path out")

// FindNginx returns the path of the nginx binary, looking in PATH and in
// /usr/sbin, where Debian installs it.
func FindNginx() (string, error) {
	if p, err := exec.LookPath("nginx"); err == nil {
		return p, nil
	}
	for _, p := range []string{"/usr/sbin/nginx", "/usr/local/sbin/nginx", "/usr/local/nginx/sbin/nginx"} {
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", ErrNoNginx
}

// nginxConf is a loopback-only reverse proxy to the stub with upstream
// keep-alive, as in spec/performance.md Appendix B.
const nginxConf = `# written by keywarden bench; loopback only
worker_processes auto;
daemon off;
master_process on;
pid nginx.pid;
error_log logs/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path body;
    proxy_temp_path proxy;
    fastcgi_temp_path fcgi;
    uwsgi_temp_path uwsgi;
    scgi_temp_path scgi;
    keepalive_requests 1000000;
    keepalive_timeout 75s;
    upstream exchange {
        server %s;
        keepalive 256;
        keepalive_requests 1000000;
    }
    server {
        listen %s;
        location / {
            proxy_pass http://exchange;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $proxy_host;
        }
    }
}
`

// nginxProc is a running nginx master with its workers.
type nginxProc struct {
	cmd  *exec.Cmd
	url  string
	done chan error
	logs *tailBuffer
}

// startNginx runs bin as a reverse proxy from a free loopback port to
// upstream (host:port), with its prefix, config and logs in dir.
func startNginx(ctx context.Context, bin, dir, upstream string) (*nginxProc, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	listen := "127.0.0.1:" + strconv.Itoa(port)
	if err := os.MkdirAll(filepath.Join(dir, "logs"), 0o755); err != nil {
		return nil, err
	}
	conf := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(conf, []byte(fmt.Sprintf(nginxConf, upstream, listen)), 0o644); err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, "-p", dir+"/", "-c", conf, "-e", filepath.Join(dir, "logs", "error.log"))
	p := &nginxProc{cmd: cmd, url: "http://" + listen, done: make(chan error, 1), logs: &tailBuffer{max: 4096}}
	cmd.Stdout, cmd.Stderr = p.logs, p.logs
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("bench: start nginx: %w", err)
	}
	go func() { p.done <- cmd.Wait() }()
	// Ready when the port answers and the workers are up (bounded).
	for i := 0; i < 100; i++ {
		select {
		case err := <-p.done:
			b, _ := os.ReadFile(filepath.Join(dir, "logs", "error.log"))
			return nil, fmt.Errorf("bench: nginx exited: %v: %s %s", err, p.logs.String(), lastLines(string(b), 5))
		case <-ctx.Done():
			p.stop()
			return nil, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
		c, err := net.DialTimeout("tcp", listen, time.Second)
		if err != nil {
			continue
		}
		c.Close()
		if len(p.pids()) > 1 {
			return p, nil
		}
	}
	p.stop()
	return nil, errors.New("bench: nginx did not start listening within 5 s")
}

// pids returns the master's and its workers' process ids.
func (p *nginxProc) pids() []int {
	master := p.cmd.Process.Pid
	return append([]int{master}, children(master)...)
}

// stop ends nginx (SIGQUIT lets workers finish; SIGKILL after 5 s).
func (p *nginxProc) stop() {
	_ = p.cmd.Process.Signal(syscallQuit)
	select {
	case <-p.done:
	case <-time.After(5 * time.Second):
		for _, pid := range children(p.cmd.Process.Pid) {
			if pr, err := os.FindProcess(pid); err == nil {
				_ = pr.Kill()
			}
		}
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// children lists pid's child processes from /proc.
func children(pid int) []int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", pid, pid))
	if err == nil {
		var out []int
		for _, f := range strings.Fields(string(b)) {
			if n, err := strconv.Atoi(f); err == nil {
				out = append(out, n)
			}
		}
		return out
	}
	// Kernels without the children file: scan every process's parent.
	ents, _ := os.ReadDir("/proc")
	var out []int
	for _, e := range ents {
		n, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		st, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		s := string(st)
		i := strings.LastIndexByte(s, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(s[i+1:])
		if len(f) > 1 && f[1] == strconv.Itoa(pid) {
			out = append(out, n)
		}
	}
	return out
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

func lastLines(s string, n int) string {
	ls := strings.Split(strings.TrimSpace(s), "\n")
	if len(ls) > n {
		ls = ls[len(ls)-n:]
	}
	return strings.Join(ls, "\n")
}
