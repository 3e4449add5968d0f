package apiclient

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// TestAnswerOverTheLimit: an answer longer than the client reads is an
// error that says so; it was cut at the limit without a word, so Dump
// returned a truncated dump as the whole one, and a JSON answer failed to
// decode with "unexpected end of JSON input".
func TestAnswerOverTheLimit(t *testing.T) {
	body := `{"seq":1,"leader":"p1","node":"p1","vertices":[` + strings.Repeat(`{"id":1},`, 200) + `{"id":2}]}`
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(body))
	}))
	defer ts.Close()
	c, err := New(ts.URL, "t", 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	c.maxAnswer = int64(len(body))
	if got, err := c.Dump(context.Background()); err != nil || string(got) != body {
		t.Fatalf("an answer of the limit's length: %d bytes, %v; want it whole", len(got), err)
	}
	c.maxAnswer = int64(len(body)) - 1
	if got, err := c.Dump(context.Background()); err == nil || !strings.Contains(err.Error(), "longer than") {
		t.Errorf("an answer one byte over the limit: %d bytes, %v; want an error saying it is longer than the limit", len(got), err)
	}
	if _, err := c.Status(context.Background()); err == nil || !strings.Contains(err.Error(), "longer than") {
		t.Errorf("a JSON answer over the limit: %v; want an error saying it is longer than the limit", err)
	}
}
