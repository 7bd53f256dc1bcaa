package notify

// Real peers for the tests: an HTTP webhook receiver (httptest) and an
// SMTP server (github.com/emersion/go-smtp), both on loopback.

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
)

// hookCall is one request the receiver got.
type hookCall struct {
	delivery  string
	signature string
	body      []byte
	payload   WebhookPayload
	status    int
}

// hookReceiver is a webhook receiver answering 500 to the first fails
// requests.
type hookReceiver struct {
	srv   *httptest.Server
	mu    sync.Mutex
	fails int
	calls []hookCall
	got   chan hookCall
}

func newHookReceiver(t *testing.T, fails int) *hookReceiver {
	r := &hookReceiver{fails: fails, got: make(chan hookCall, 1000)}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		c := hookCall{delivery: req.Header.Get(HeaderDelivery), signature: req.Header.Get(HeaderSignature), body: body, status: http.StatusOK}
		_ = json.Unmarshal(body, &c.payload)
		r.mu.Lock()
		if r.fails > 0 {
			r.fails--
			c.status = http.StatusInternalServerError
		}
		r.calls = append(r.calls, c)
		r.mu.Unlock()
		w.WriteHeader(c.status)
		r.got <- c
	}))
	t.Cleanup(r.srv.Close)
	return r
}

// next waits for the next request.
func (r *hookReceiver) next(t *testing.T, within time.Duration) hookCall {
	t.Helper()
	select {
	case c := <-r.got:
		return c
	case <-time.After(within):
		t.Fatalf("no webhook request within %v", within)
		return hookCall{}
	}
}

// verify checks c's signature under secret.
func verify(t *testing.T, c hookCall, secret string) {
	t.Helper()
	if want := Sign([]byte(secret), c.body); !hmac.Equal([]byte(c.signature), []byte(want)) || !strings.HasPrefix(c.signature, "sha256=") {
		t.Fatalf("signature %q, want %q", c.signature, want)
	}
}

// mailMsg is one message the SMTP server accepted.
type mailMsg struct {
	from string
	to   []string
	data string
	tls  bool // received over a STARTTLS-upgraded connection
}

// smtpServer is a go-smtp server keeping what it accepts; it answers
// 451 to the first fails DATA commands.
type smtpServer struct {
	addr  string
	mu    sync.Mutex
	fails int
	got   chan mailMsg
}

type smtpSession struct {
	s    *smtpServer
	conn *smtp.Conn
	msg  mailMsg
}

func (s *smtpSession) Reset()        { s.msg = mailMsg{} }
func (s *smtpSession) Logout() error { return nil }
func (s *smtpSession) Mail(from string, _ *smtp.MailOptions) error {
	s.msg.from = from
	return nil
}
func (s *smtpSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	s.msg.to = append(s.msg.to, to)
	return nil
}
func (s *smtpSession) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	s.s.mu.Lock()
	fail := s.s.fails > 0
	if fail {
		s.s.fails--
	}
	s.s.mu.Unlock()
	if fail {
		return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "try again later"}
	}
	s.msg.data = string(b)
	_, s.msg.tls = s.conn.TLSConnectionState()
	s.s.got <- s.msg
	return nil
}

func newSMTPServer(t *testing.T, fails int) *smtpServer { return newSMTPServerTLS(t, fails, nil) }

// newSMTPServerTLS is newSMTPServer offering STARTTLS with tc (nil: no
// STARTTLS).
func newSMTPServerTLS(t *testing.T, fails int, tc *tls.Config) *smtpServer {
	s := &smtpServer{fails: fails, got: make(chan mailMsg, 100)}
	srv := smtp.NewServer(smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) { return &smtpSession{s: s, conn: c}, nil }))
	srv.Domain = "localhost"
	srv.TLSConfig = tc
	srv.ReadTimeout, srv.WriteTimeout = 10*time.Second, 10*time.Second
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.addr = l.Addr().String()
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.Serve(l); err != nil && !errors.Is(err, smtp.ErrServerClosed) {
			t.Logf("smtp server: %v", err)
		}
	}()
	t.Cleanup(func() { _ = srv.Close(); <-done })
	return s
}

func (s *smtpServer) next(t *testing.T, within time.Duration) mailMsg {
	t.Helper()
	select {
	case m := <-s.got:
		return m
	case <-time.After(within):
		t.Fatalf("no mail within %v", within)
		return mailMsg{}
	}
}

// selfSignedCA returns a TLS config for 127.0.0.1 with a self-signed
// certificate, and the path of that certificate as a PEM file.
func selfSignedCA(t *testing.T) (*tls.Config, string) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "termd test relay"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}}, path
}

// hostPort splits the server's address for [notify.smtp].
func (s *smtpServer) hostPort(t *testing.T) (string, int) {
	h, p, _ := net.SplitHostPort(s.addr)
	port := 0
	for _, c := range p {
		port = port*10 + int(c-'0')
	}
	return h, port
}
