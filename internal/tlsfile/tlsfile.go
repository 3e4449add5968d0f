// Package tlsfile serves TLS certificates and CA bundles from files that
// are renewed in place (certbot, cert-manager: new files written over the
// old ones). A Pair or a Pool reads its files once when made, and again,
// at a handshake, when their modification time or size has changed since
// it last looked (it looks at most every CheckEvery). A change that does
// not load (a half-written renewal, a key that is not the certificate's)
// keeps what was loaded before and is warned about once.
package tlsfile

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"
)

// DefaultCheckEvery is Options.CheckEvery's default.
const DefaultCheckEvery = 5 * time.Second

// Options are a Pair's or Pool's collaborators.
type Options struct {
	// Logger gets the warnings of changes that do not load.
	Logger *slog.Logger
	// Now is the clock of CheckEvery (default time.Now).
	Now func() time.Time
	// CheckEvery is how often, at most, the files are looked at
	// (default DefaultCheckEvery).
	CheckEvery time.Duration
	// Key names the configuration key the files were given under, in
	// the warnings (e.g. "listener.server.tls").
	Key string
}

// Pair is a certificate and its key read from files.
type Pair struct {
	w *watched[*tls.Certificate]
}

// LoadPair reads certFile (PEM, the intermediates after the certificate)
// and keyFile.
func LoadPair(certFile, keyFile string, o Options) (*Pair, error) {
	w, err := watch(o, "cert_file and key_file", []string{certFile, keyFile}, func() (*tls.Certificate, error) {
		c, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			return nil, err
		}
		return &c, nil
	})
	if err != nil {
		return nil, err
	}
	return &Pair{w}, nil
}

// Certificate is the pair, read again first if its files changed.
func (p *Pair) Certificate() *tls.Certificate { return p.w.get() }

// GetCertificate is tls.Config.GetCertificate (a server's certificate).
func (p *Pair) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return p.Certificate(), nil
}

// GetClientCertificate is tls.Config.GetClientCertificate (a client's
// certificate, for mutual TLS).
func (p *Pair) GetClientCertificate(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
	return p.Certificate(), nil
}

// Pool is a bundle of CA certificates read from a file.
type Pool struct {
	w *watched[*x509.CertPool]
}

// LoadPool reads caFile, a PEM bundle of one certificate or more.
func LoadPool(caFile string, o Options) (*Pool, error) {
	w, err := watch(o, "ca_file", []string{caFile}, func() (*x509.CertPool, error) {
		b, err := os.ReadFile(caFile)
		if err != nil {
			return nil, err
		}
		p := x509.NewCertPool()
		if !p.AppendCertsFromPEM(b) {
			return nil, fmt.Errorf("%s holds no PEM certificate", caFile)
		}
		return p, nil
	})
	if err != nil {
		return nil, err
	}
	return &Pool{w}, nil
}

// CertPool is the bundle, read again first if its file changed.
func (p *Pool) CertPool() *x509.CertPool { return p.w.get() }

// stamp tells a version of files: their modification times and sizes.
type stamp string

func stampOf(files []string) (stamp, error) {
	s := ""
	for _, f := range files {
		fi, err := os.Stat(f)
		if err != nil {
			return "", err
		}
		s += fmt.Sprintf("%d/%d;", fi.ModTime().UnixNano(), fi.Size())
	}
	return stamp(s), nil
}

// watched is a value loaded from files, loaded again when they change.
type watched[T any] struct {
	o     Options
	what  string // the keys of the files, in errors and warnings
	files []string
	load  func() (T, error)

	mu      sync.Mutex
	v       T
	loaded  stamp     // the files' stamp when v was loaded
	failed  stamp     // the stamp of the last change that did not load
	checked time.Time // when the stamps were last looked at
}

func watch[T any](o Options, what string, files []string, load func() (T, error)) (*watched[T], error) {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.CheckEvery <= 0 {
		o.CheckEvery = DefaultCheckEvery
	}
	w := &watched[T]{o: o, what: what, files: files, load: load}
	// The stamp is taken before the load: a change made meanwhile is
	// loaded at the next look.
	st, err := stampOf(files)
	if err == nil {
		w.v, err = load()
	}
	if err != nil {
		return nil, fmt.Errorf("tls: load %s: %w", what, err)
	}
	w.loaded, w.checked = st, o.Now()
	return w, nil
}

// get is the value, loaded again first if the files changed since it was
// and CheckEvery has passed since they were last looked at.
func (w *watched[T]) get() T {
	w.mu.Lock()
	defer w.mu.Unlock()
	now := w.o.Now()
	if now.Sub(w.checked) < w.o.CheckEvery && !now.Before(w.checked) {
		return w.v
	}
	w.checked = now
	st, err := stampOf(w.files)
	if err == nil && (st == w.loaded || st == w.failed) {
		return w.v
	}
	var v T
	if err == nil {
		v, err = w.load()
	}
	if err != nil {
		// A missing file has no stamp: warned about once until it is back.
		if st == "" {
			st = "missing"
		}
		if st != w.failed {
			w.failed = st
			w.o.Logger.Warn("tls: the renewed certificate files do not load; serving the ones loaded before",
				"files", w.what, "key", w.o.Key, "err", err)
		}
		return w.v
	}
	w.v, w.loaded, w.failed = v, st, ""
	w.o.Logger.Info("tls: renewed certificate files loaded", "files", w.what, "key", w.o.Key)
	return w.v
}
