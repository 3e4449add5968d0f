// Package apiclient is a client of the processor's HTTP API (package
// processor/api), used by the CLI.
package apiclient

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/causeway/causeway/internal/redirect"
	"github.com/causeway/causeway/processor/api"
)

// Error is a non-2xx answer.
type Error struct {
	Status  int
	Message string
	// Problems are the findings of a refused template (400 or 409 to
	// AddTemplate); Message then says them one a line.
	Problems []api.Problem
	// Leader is the leader the answering node knows (X-Causeway-Leader).
	Leader string
}

func (e *Error) Error() string {
	return fmt.Sprintf("api: %d %s: %s", e.Status, http.StatusText(e.Status), e.Message)
}

// MaxAnswerBytes bounds the answer a client reads.
const MaxAnswerBytes = 256 << 20

// Client talks to one processor node.
type Client struct {
	base  *url.URL
	token string
	hc    *http.Client
	// maxAnswer bounds the answer read (MaxAnswerBytes).
	maxAnswer int64
}

// New returns a client of the API at baseURL (http://host:port, or
// https:// with a certificate the system's authorities signed).
func New(baseURL, token string, timeout time.Duration) (*Client, error) {
	return NewWithTLS(baseURL, token, timeout, TLS{})
}

// TLS configures the client's https (see processor.api.tls).
type TLS struct {
	// CAFile is the PEM bundle of the authorities whose certificate the
	// API may present; empty: the system's.
	CAFile string
	// CertFile and KeyFile are the client's certificate and key, for an
	// API of mutual TLS (client_ca_file): both, or none.
	CertFile, KeyFile string
}

// config is the tls.Config of t; nil when t is empty.
func (t TLS) config() (*tls.Config, error) {
	if t == (TLS{}) {
		return nil, nil
	}
	c := &tls.Config{MinVersion: tls.VersionTLS12}
	if t.CAFile != "" {
		b, err := os.ReadFile(t.CAFile)
		if err != nil {
			return nil, fmt.Errorf("ca file: %w", err)
		}
		c.RootCAs = x509.NewCertPool()
		if !c.RootCAs.AppendCertsFromPEM(b) {
			return nil, fmt.Errorf("ca file: %s holds no PEM certificate", t.CAFile)
		}
	}
	if (t.CertFile == "") != (t.KeyFile == "") {
		return nil, errors.New("client certificate: set the cert file and the key file, or none")
	}
	if t.CertFile != "" {
		pair, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("client certificate: %w", err)
		}
		c.Certificates = []tls.Certificate{pair}
	}
	return c, nil
}

// NewWithTLS is New with the https settings t.
func NewWithTLS(baseURL, token string, timeout time.Duration, t TLS) (*Client, error) {
	u, err := url.Parse(strings.TrimRight(baseURL, "/"))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("api url %q: want http(s)://host:port", baseURL)
	}
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	tc, err := t.config()
	if err != nil {
		return nil, err
	}
	// A redirect to another origin (https to http, another port) is not
	// followed: the token would go with it.
	hc := &http.Client{Timeout: timeout, CheckRedirect: redirect.SameOrigin}
	if tc != nil {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.TLSClientConfig = tc
		hc.Transport = tr
	}
	return &Client{base: u, token: token, hc: hc, maxAnswer: MaxAnswerBytes}, nil
}

// Do sends a request and decodes a JSON answer into out (nil: discard).
// A non-2xx answer is an *Error.
func (c *Client) Do(ctx context.Context, method, path string, q url.Values, body []byte, contentType string, out any) error {
	// path is escaped ("/v1/templates/host%20nic"): keep that encoding
	// rather than have String escape the escapes.
	unescaped, err := url.PathUnescape(path)
	if err != nil {
		return fmt.Errorf("request path %q: %w", path, err)
	}
	u := *c.base
	u.Path, u.RawPath = c.base.Path+unescaped, c.base.EscapedPath()+path
	if q != nil {
		u.RawQuery = q.Encode()
	}
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), rd)
	if err != nil {
		return fmt.Errorf("build request: %w", err)
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	// One byte past the bound tells a longer answer from one of its
	// length: a cut answer is no answer (a dump would pass for whole).
	raw, err := io.ReadAll(io.LimitReader(resp.Body, c.maxAnswer+1))
	if err != nil {
		return fmt.Errorf("%s %s: read answer: %w", method, path, err)
	}
	if int64(len(raw)) > c.maxAnswer {
		return fmt.Errorf("%s %s: the answer is longer than %d bytes, all a client reads", method, path, c.maxAnswer)
	}
	if resp.StatusCode/100 != 2 {
		return answerError(resp, raw)
	}
	if out == nil {
		return nil
	}
	if b, ok := out.(*[]byte); ok {
		*b = raw
		return nil
	}
	if err := json.Unmarshal(raw, out); err != nil {
		return fmt.Errorf("%s %s: decode answer: %w", method, path, err)
	}
	return nil
}

// answerError is the *Error of a non-2xx answer: the API's error message,
// or a refused template's problems, or else the body as it came.
func answerError(resp *http.Response, raw []byte) *Error {
	e := &Error{Status: resp.StatusCode, Message: strings.TrimSpace(string(raw)), Leader: resp.Header.Get(api.HeaderLeader)}
	var body struct {
		Error    string        `json:"error"`
		Problems []api.Problem `json:"problems"`
	}
	if json.Unmarshal(raw, &body) != nil {
		return e
	}
	switch {
	case body.Error != "":
		e.Message = body.Error
	case len(body.Problems) > 0:
		lines := make([]string, len(body.Problems))
		for i, p := range body.Problems {
			lines[i] = "  " + p.String()
		}
		e.Problems = body.Problems
		e.Message = fmt.Sprintf("%d problem(s)\n%s", len(body.Problems), strings.Join(lines, "\n"))
	}
	return e
}

// segment escapes a name or id as one path segment. A dot segment is
// escaped whole ("%2E%2E"): sent as is, the server would clean it away
// (GET /v1/templates/.. is GET /v1) rather than take it as the name.
func segment(s string) string {
	switch s {
	case ".":
		return "%2E"
	case "..":
		return "%2E%2E"
	}
	return url.PathEscape(s)
}

// Status is GET /v1/status.
func (c *Client) Status(ctx context.Context) (api.StatusResponse, error) {
	var r api.StatusResponse
	return r, c.Do(ctx, http.MethodGet, "/v1/status", nil, nil, "", &r)
}

// TopologyQuery selects a topology (api.TopologyQuery).
type TopologyQuery = api.TopologyQuery

// Topology is GET /v1/topology.
func (c *Client) Topology(ctx context.Context, tq TopologyQuery) (api.TopologyResponse, error) {
	q := url.Values{}
	set := func(k, v string) {
		if v != "" {
			q.Set(k, v)
		}
	}
	set("graph_type", tq.GraphType)
	set("root", tq.Root)
	set("type", tq.Type)
	set("category", tq.Category)
	if tq.Depth != 0 {
		// A negative depth too: the server refuses it, rather than the
		// client answering for it.
		q.Set("depth", strconv.Itoa(tq.Depth))
	}
	if tq.All {
		q.Set("all", "true")
	}
	var r api.TopologyResponse
	return r, c.Do(ctx, http.MethodGet, "/v1/topology", q, nil, "", &r)
}

// Alarms is GET /v1/alarms (lq.All: include cleared ones; lq.Resource:
// only alarms on that vitrage_id): one page, after lq.Marker.
func (c *Client) Alarms(ctx context.Context, lq ListQuery) (api.ResourcesResponse, error) {
	var r api.ResourcesResponse
	return r, c.Do(ctx, http.MethodGet, "/v1/alarms", lq.values(), nil, "", &r)
}

// EachPage reads the list of resources (alarms false) or alarms that lq
// selects a page at a time, from lq.Marker (none: the first), calling
// page with each as it comes, until a page says no next marker: only one
// page is held at a time. Each page says the seq it reflects; they differ
// when the graph moved between pages. A server of a release before paging
// answers the whole list as one page, without a next marker.
func (c *Client) EachPage(ctx context.Context, alarms bool, lq ListQuery, page func(api.ResourcesResponse) error) error {
	list := c.Resources
	if alarms {
		list = c.Alarms
	}
	for {
		r, err := list(ctx, lq)
		if err != nil {
			return err
		}
		if err := page(r); err != nil {
			return err
		}
		if r.Next == "" {
			return nil
		}
		if r.Next == lq.Marker {
			return fmt.Errorf("list: the page after marker %s says the same marker next: the server does not page on", lq.Marker)
		}
		lq.Marker = r.Next
	}
}

// ListQuery filters a list or count of resources or alarms.
type ListQuery struct {
	Type, ProjectID string
	// All includes deleted vertices and placeholders.
	All bool
	// Resource keeps the alarms on that vitrage_id (alarms only).
	Resource string
	// GroupBy is a count's grouping (type, state, severity, project_id,
	// source; "": the endpoint's).
	GroupBy string
	// Limit is a list's page size (0: the server's, its
	// processor.api.max_page_size), Marker the vitrage_id its page starts
	// after (the next marker of the page before; "": the first page).
	Limit  int
	Marker string
}

func (lq ListQuery) values() url.Values {
	q := url.Values{}
	for k, v := range map[string]string{"type": lq.Type, "project_id": lq.ProjectID, "resource": lq.Resource, "group_by": lq.GroupBy} {
		if v != "" {
			q.Set(k, v)
		}
	}
	if lq.All {
		q.Set("all", "true")
	}
	if lq.Limit != 0 {
		q.Set("limit", strconv.Itoa(lq.Limit))
	}
	if lq.Marker != "" {
		q.Set("marker", lq.Marker)
	}
	return q
}

// Resources is GET /v1/resources: one page, after lq.Marker.
func (c *Client) Resources(ctx context.Context, lq ListQuery) (api.ResourcesResponse, error) {
	var r api.ResourcesResponse
	return r, c.Do(ctx, http.MethodGet, "/v1/resources", lq.values(), nil, "", &r)
}

// Resource is GET /v1/resources/{id}.
func (c *Client) Resource(ctx context.Context, id string) (api.ResourceResponse, error) {
	var r api.ResourceResponse
	return r, c.Do(ctx, http.MethodGet, "/v1/resources/"+segment(id), nil, nil, "", &r)
}

// Count is GET /v1/resources/count (alarms false) or /v1/alarms/count.
func (c *Client) Count(ctx context.Context, alarms bool, lq ListQuery) (api.CountResponse, error) {
	path := "/v1/resources/count"
	if alarms {
		path = "/v1/alarms/count"
	}
	var r api.CountResponse
	return r, c.Do(ctx, http.MethodGet, path, lq.values(), nil, "", &r)
}

// Alarm is GET /v1/alarms/{id}.
func (c *Client) Alarm(ctx context.Context, id string) (api.ResourceResponse, error) {
	var r api.ResourceResponse
	return r, c.Do(ctx, http.MethodGet, "/v1/alarms/"+segment(id), nil, nil, "", &r)
}

// RCA is GET /v1/rca/{id}: live, or at seq (> 0) or at (non-zero).
func (c *Client) RCA(ctx context.Context, id string, seq int64, at time.Time) (api.RCAResponse, error) {
	q := url.Values{}
	if seq > 0 {
		q.Set("seq", strconv.FormatInt(seq, 10))
	}
	if !at.IsZero() {
		q.Set("at", at.UTC().Format(time.RFC3339Nano))
	}
	var r api.RCAResponse
	return r, c.Do(ctx, http.MethodGet, "/v1/rca/"+segment(id), q, nil, "", &r)
}

// Templates is GET /v1/templates.
func (c *Client) Templates(ctx context.Context) (api.TemplatesResponse, error) {
	var r api.TemplatesResponse
	return r, c.Do(ctx, http.MethodGet, "/v1/templates", nil, nil, "", &r)
}

// Template is GET /v1/templates/{name}.
func (c *Client) Template(ctx context.Context, name string) (api.TemplateResponse, error) {
	var r api.TemplateResponse
	return r, c.Do(ctx, http.MethodGet, "/v1/templates/"+segment(name), nil, nil, "", &r)
}

// Subscription is GET /v1/subscriptions/{id} (admin): its spec, and the
// page of the alarms it follows after the key after (none: the first), at
// most limit of them (0: the server's default).
func (c *Client) Subscription(ctx context.Context, id, after string, limit int) (api.SubscriptionResponse, error) {
	var r api.SubscriptionResponse
	q := url.Values{}
	if after != "" {
		q.Set("following_after", after)
	}
	if limit > 0 {
		q.Set("following_limit", strconv.Itoa(limit))
	}
	return r, c.Do(ctx, http.MethodGet, "/v1/subscriptions/"+segment(id), q, nil, "", &r)
}

// AddTemplate is POST /v1/templates, with the values of the template's
// parameters (none: the body is sent as YAML, as to a release before
// params). A refused template is an *Error with status 400 (409: it
// includes a definition the node has not loaded) whose Problems are the
// findings.
func (c *Client) AddTemplate(ctx context.Context, body []byte, params map[string]string) (api.AcceptedResponse, error) {
	var r api.AcceptedResponse
	if len(params) == 0 {
		return r, c.Do(ctx, http.MethodPost, "/v1/templates", nil, body, "application/yaml", &r)
	}
	b, err := json.Marshal(api.Template{Body: string(body), Params: params})
	if err != nil {
		return r, fmt.Errorf("encode template: %w", err)
	}
	return r, c.Do(ctx, http.MethodPost, "/v1/templates", nil, b, "application/json", &r)
}

// DeleteTemplate is DELETE /v1/templates/{name}.
func (c *Client) DeleteTemplate(ctx context.Context, name string) (api.AcceptedResponse, error) {
	var r api.AcceptedResponse
	return r, c.Do(ctx, http.MethodDelete, "/v1/templates/"+segment(name), nil, nil, "", &r)
}

// Cluster is GET /v1/cluster.
func (c *Client) Cluster(ctx context.Context) (api.ClusterResponse, error) {
	var r api.ClusterResponse
	return r, c.Do(ctx, http.MethodGet, "/v1/cluster", nil, nil, "", &r)
}

// Join is POST /v1/cluster/join (send it to the leader).
func (c *Client) Join(ctx context.Context, id, addr string) (api.ClusterResponse, error) {
	b, _ := json.Marshal(map[string]string{"id": id, "address": addr})
	var r api.ClusterResponse
	return r, c.Do(ctx, http.MethodPost, "/v1/cluster/join", nil, b, "application/json", &r)
}

// Remove is POST /v1/cluster/remove (send it to the leader).
func (c *Client) Remove(ctx context.Context, id string) (api.ClusterResponse, error) {
	b, _ := json.Marshal(map[string]string{"id": id})
	var r api.ClusterResponse
	return r, c.Do(ctx, http.MethodPost, "/v1/cluster/remove", nil, b, "application/json", &r)
}

// Dump is GET /v1/debug/dump (admin): the canonical dump and its seq.
func (c *Client) Dump(ctx context.Context) ([]byte, error) {
	var b []byte
	return b, c.Do(ctx, http.MethodGet, "/v1/debug/dump", nil, nil, "", &b)
}

// IsNotLeader says whether err is a 409 from a membership change sent to
// a follower.
func IsNotLeader(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.Status == http.StatusConflict
}
