package etcdtest

import (
	"io"
	"net"
	"sync"
)

// Proxy is a TCP relay to an etcd server that can be cut: a network
// partition of the nodes that reach etcd through it (or, from etcd's
// side, their death).
type Proxy struct {
	l        net.Listener
	upstream string
	mu       sync.Mutex
	down     bool
	conns    []net.Conn
	wg       sync.WaitGroup
}

// NewProxy relays 127.0.0.1:<free port> to the server's client URL.
func NewProxy(s *Server) (*Proxy, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &Proxy{l: l, upstream: s.endpoint[len("http://"):]}
	p.wg.Add(1)
	go p.serve()
	return p, nil
}

// Endpoint is the proxy's client URL.
func (p *Proxy) Endpoint() string { return "http://" + p.l.Addr().String() }

func (p *Proxy) serve() {
	defer p.wg.Done()
	for {
		c, err := p.l.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		if p.down {
			p.mu.Unlock()
			c.Close()
			continue
		}
		up, err := net.Dial("tcp", p.upstream)
		if err != nil {
			p.mu.Unlock()
			c.Close()
			continue
		}
		p.conns = append(p.conns, c, up)
		p.wg.Add(2)
		p.mu.Unlock()
		go p.pipe(up, c)
		go p.pipe(c, up)
	}
}

func (p *Proxy) pipe(dst, src net.Conn) {
	defer p.wg.Done()
	io.Copy(dst, src)
	dst.Close()
}

// Cut closes every relayed connection and refuses new ones.
func (p *Proxy) Cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = true
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}

// Heal accepts connections again.
func (p *Proxy) Heal() {
	p.mu.Lock()
	p.down = false
	p.mu.Unlock()
}

// Close cuts everything and stops the proxy.
func (p *Proxy) Close() {
	p.l.Close()
	p.Cut()
	p.wg.Wait()
}
