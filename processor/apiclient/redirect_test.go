package apiclient_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/causeway/causeway/processor/apiclient"
)

// TestRedirectElsewhereKeepsTheToken: the CLI followed a redirect to
// another port of the API's host (or from https to http) with its bearer
// token, an admin's as often as not: Go's client keeps the Authorization
// header for the same host name whatever the port and scheme. Such a
// redirect is not followed; the command fails naming where it pointed.
func TestRedirectElsewhereKeepsTheToken(t *testing.T) {
	var leaked atomic.Int32
	elsewhere := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "" {
			leaked.Add(1)
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{}`))
	}))
	t.Cleanup(elsewhere.Close)
	api := httptest.NewServer(http.RedirectHandler(elsewhere.URL+"/v1/status", http.StatusTemporaryRedirect))
	t.Cleanup(api.Close)
	c, err := apiclient.New(api.URL, "adm", time.Second)
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Status(context.Background())
	if n := leaked.Load(); n > 0 {
		t.Errorf("the token was sent %d times to the other origin a redirect named", n)
	}
	if err == nil || !strings.Contains(err.Error(), "redirect") || !strings.Contains(err.Error(), elsewhere.URL) {
		t.Errorf("Status redirected to another origin: %v; want an error naming the redirect and %s", err, elsewhere.URL)
	}
}
