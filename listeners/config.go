package listeners

import (
	"cmp"
	"crypto/sha256"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"time"

	"github.com/causeway/causeway/internal/tlsfile"
)

// Defaults of Config.
const (
	DefaultListen            = ":8091"
	DefaultReadHeaderTimeout = 5 * time.Second
	DefaultReadTimeout       = 30 * time.Second
	DefaultWriteTimeout      = 30 * time.Second
	DefaultIdleTimeout       = 2 * time.Minute
	DefaultShutdownTimeout   = 20 * time.Second
	DefaultMaxBodyBytes      = 4 << 20
	DefaultMaxInflightBytes  = 64 << 20
	DefaultRetryAfter        = 30 * time.Second
	DefaultMaxClockSkew      = 5 * time.Minute
)

// Config configures the HTTP listener server.
type Config struct {
	// Listen is the TCP address (default ":8091").
	Listen string `yaml:"listen"`
	// Timeouts of the server (defaults 5s header, 30s read, 30s write,
	// 2m idle) and the grace period of a shutdown (default 20s; requests
	// still in flight then are cut, unanswered, and the stop is a clean
	// one all the same).
	ReadHeaderTimeout time.Duration `yaml:"read_header_timeout"`
	ReadTimeout       time.Duration `yaml:"read_timeout"`
	WriteTimeout      time.Duration `yaml:"write_timeout"`
	IdleTimeout       time.Duration `yaml:"idle_timeout"`
	ShutdownTimeout   time.Duration `yaml:"shutdown_timeout"`
	// MaxBodyBytes bounds a request body of an endpoint that has no
	// bound of its own (the Alertmanager webhook has); larger ones get
	// 413 (default 4 MiB).
	MaxBodyBytes int64 `yaml:"max_body_bytes"`
	// MaxInflightBytes bounds the request bodies held at once, over every
	// endpoint (default 64 MiB): a request whose body does not fit beside
	// the ones being taken gets 503 with Retry-After, which Alertmanager
	// and the other clients retry. A body without Content-Length counts
	// by what is read of it, as it is read. It must be at least every
	// endpoint's bound. Decoding a body takes a few times its size more.
	MaxInflightBytes int64 `yaml:"max_inflight_bytes"`
	// RetryAfter is sent with 503 when the spool is full (default 30s).
	RetryAfter time.Duration `yaml:"retry_after"`
	// MaxClockSkew is how far in the future of this host's clock an
	// event may be dated (default 5m): one dated later is taken, dated
	// now plus the skew, and counted (a sender's clock is ahead).
	MaxClockSkew time.Duration `yaml:"max_clock_skew"`
	// Auth is required on every endpoint.
	Auth Auth `yaml:"auth"`
	// TLS serves HTTPS; unset, plain HTTP, whose senders' credentials
	// cross the network in clear.
	TLS TLS `yaml:"tls"`
}

// TLS is the server's certificate: CertFile (PEM, the intermediates after
// it) and KeyFile, its private key (a secret). Both, or none.
type TLS struct {
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
}

func (t TLS) validate() error {
	if (t.CertFile == "") != (t.KeyFile == "") {
		return errors.New("tls: set cert_file and key_file, or none")
	}
	return nil
}

// load reads the key pair; nil when none is configured. The files are
// read again when they change (a renewal), see tlsfile.
func (t TLS) load(o tlsfile.Options) (*tls.Config, error) {
	if t.CertFile == "" {
		return nil, nil
	}
	pair, err := tlsfile.LoadPair(t.CertFile, t.KeyFile, o)
	if err != nil {
		return nil, err
	}
	return &tls.Config{GetCertificate: pair.GetCertificate, MinVersion: tls.VersionTLS12}, nil
}

// Auth lists the accepted credentials: bearer tokens, and/or one basic
// auth user. Secrets are given inline or, better, as files.
type Auth struct {
	Tokens []Token `yaml:"tokens"`
	// Username with Password or PasswordFile enables basic auth.
	Username     string `yaml:"username"`
	Password     string `yaml:"password"`
	PasswordFile string `yaml:"password_file"`
	// InsecureNoAuth accepts unauthenticated requests; it must be set
	// explicitly when no credential is configured.
	InsecureNoAuth bool `yaml:"insecure_no_auth"`
}

// Token is one bearer token, inline or in a file.
type Token struct {
	Token     string `yaml:"token"`
	TokenFile string `yaml:"token_file"`
}

// String redacts the token.
func (t Token) String() string {
	if t.Token != "" {
		return "{token:<redacted>}"
	}
	return fmt.Sprintf("{token_file:%s}", t.TokenFile)
}

// String redacts the secrets.
func (a Auth) String() string {
	toks := make([]string, len(a.Tokens))
	for i, t := range a.Tokens {
		toks[i] = t.String()
	}
	pw := ""
	if a.Password != "" {
		pw = "<redacted>"
	}
	return fmt.Sprintf("{tokens:[%s] username:%s password:%s password_file:%s insecure_no_auth:%t}",
		strings.Join(toks, " "), a.Username, pw, a.PasswordFile, a.InsecureNoAuth)
}

// String redacts the secrets.
func (c Config) String() string {
	return fmt.Sprintf("{listen:%s read_header_timeout:%s read_timeout:%s write_timeout:%s idle_timeout:%s shutdown_timeout:%s max_body_bytes:%d max_inflight_bytes:%d retry_after:%s max_clock_skew:%s auth:%s tls:{cert_file:%s key_file:%s}}",
		c.Listen, c.ReadHeaderTimeout, c.ReadTimeout, c.WriteTimeout, c.IdleTimeout, c.ShutdownTimeout, c.MaxBodyBytes, c.MaxInflightBytes, c.RetryAfter, c.MaxClockSkew, c.Auth, c.TLS.CertFile, c.TLS.KeyFile)
}

// Validate reports every problem of c, naming its YAML path.
func (c Config) Validate() error {
	var errs []error
	for _, d := range [...]struct {
		name string
		v    time.Duration
	}{{"read_header_timeout", c.ReadHeaderTimeout}, {"read_timeout", c.ReadTimeout}, {"write_timeout", c.WriteTimeout},
		{"idle_timeout", c.IdleTimeout}, {"shutdown_timeout", c.ShutdownTimeout}, {"retry_after", c.RetryAfter},
		{"max_clock_skew", c.MaxClockSkew}} {
		if d.v < 0 {
			errs = append(errs, fmt.Errorf("%s: must not be negative", d.name))
		}
	}
	if c.Listen != "" {
		// Else net.Listen refuses it only in Run: a failure to serve,
		// not a wrong configuration.
		if _, _, err := net.SplitHostPort(c.Listen); err != nil {
			errs = append(errs, fmt.Errorf("listen: %q is not host:port", c.Listen))
		}
	}
	if c.MaxBodyBytes < 0 {
		errs = append(errs, errors.New("max_body_bytes: must not be negative"))
	}
	if c.MaxInflightBytes < 0 {
		errs = append(errs, errors.New("max_inflight_bytes: must not be negative"))
	}
	if body, inflight := cmp.Or(c.MaxBodyBytes, DefaultMaxBodyBytes), cmp.Or(c.MaxInflightBytes, DefaultMaxInflightBytes); c.MaxBodyBytes >= 0 && c.MaxInflightBytes >= 0 && body > inflight {
		errs = append(errs, fmt.Errorf("max_inflight_bytes: %d is under max_body_bytes (%d): such a body could never be taken", inflight, body))
	}
	errs = append(errs, c.Auth.validate("auth"), c.TLS.validate())
	return errors.Join(errs...)
}

func (a Auth) validate(path string) error {
	var errs []error
	for i, t := range a.Tokens {
		p := fmt.Sprintf("%s.tokens[%d]", path, i)
		switch {
		case t.Token == "" && t.TokenFile == "":
			errs = append(errs, fmt.Errorf("%s: one of token and token_file is required", p))
		case t.Token != "" && t.TokenFile != "":
			errs = append(errs, fmt.Errorf("%s: token and token_file exclude each other", p))
		}
	}
	switch {
	case a.Username == "" && (a.Password != "" || a.PasswordFile != ""):
		errs = append(errs, fmt.Errorf("%s.username: is required with a password", path))
	case a.Username != "" && a.Password == "" && a.PasswordFile == "":
		errs = append(errs, fmt.Errorf("%s.password: one of password and password_file is required with a username", path))
	case a.Password != "" && a.PasswordFile != "":
		errs = append(errs, fmt.Errorf("%s.password_file: password and password_file exclude each other", path))
	}
	has := len(a.Tokens) > 0 || a.Username != ""
	if !has && !a.InsecureNoAuth {
		errs = append(errs, fmt.Errorf("%s: no credential configured (tokens, or username and password); set insecure_no_auth to accept anyone", path))
	}
	if has && a.InsecureNoAuth {
		errs = append(errs, fmt.Errorf("%s.insecure_no_auth: contradicts the configured credentials", path))
	}
	return errors.Join(errs...)
}

// credentials are the secrets of an Auth, read from their files.
// credentials keeps the secrets as their sha256 digests: a secret given
// is compared by its digest (digest), 32 bytes against 32 whatever the
// lengths, as subtle.ConstantTimeCompare returns at once on unequal
// lengths and so would tell a secret's length by its time.
type credentials struct {
	tokens   [][]byte
	user     []byte // nil: no basic auth
	password []byte
	open     bool
}

// digest is the sha256 of a secret, as credentials keep it.
func digest(secret []byte) []byte {
	sum := sha256.Sum256(secret)
	return sum[:]
}

func readSecret(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	s := strings.TrimSpace(string(b))
	if s == "" {
		return nil, fmt.Errorf("%s is empty", path)
	}
	return []byte(s), nil
}

func (a Auth) load() (credentials, error) {
	c := credentials{open: a.InsecureNoAuth}
	for i, t := range a.Tokens {
		v := []byte(t.Token)
		if t.TokenFile != "" {
			b, err := readSecret(t.TokenFile)
			if err != nil {
				return credentials{}, fmt.Errorf("auth.tokens[%d].token_file: %w", i, err)
			}
			v = b
		}
		c.tokens = append(c.tokens, digest(v))
	}
	if a.Username != "" {
		password := []byte(a.Password)
		if a.PasswordFile != "" {
			b, err := readSecret(a.PasswordFile)
			if err != nil {
				return credentials{}, fmt.Errorf("auth.password_file: %w", err)
			}
			password = b
		}
		c.user, c.password = digest([]byte(a.Username)), digest(password)
	}
	return c, nil
}
