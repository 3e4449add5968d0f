package subscription

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/causeway/causeway/internal/event"
	"github.com/google/go-cmp/cmp"
)

func TestDecodeValid(t *testing.T) {
	in := `{"url":"https://hooks.example/x","format":"alertmanager",
	 "filter":{"transitions":["raised"],"severities":["CRITICAL"],"regex":{"name":"nic.*"}},
	 "headers":{"X-Team":"ops"},"secret_ref":"ops",
	 "delivery":{"timeout":"5s","max_age":"48h","backoff_initial":"1s","backoff_max":"1m","max_backlog":10,"backlog_policy":"dead_letter"}}`
	got, err := Decode([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	want := Spec{
		URL: "https://hooks.example/x", Format: FormatAlertmanager,
		Filter:    Filter{Transitions: []string{"raised"}, Severities: []string{"CRITICAL"}, Regex: map[string]string{"name": "nic.*"}},
		Headers:   map[string]string{"X-Team": "ops"},
		SecretRef: "ops",
		Delivery: Delivery{Timeout: Duration(5 * time.Second), MaxAge: Duration(48 * time.Hour), BackoffInitial: Duration(time.Second),
			BackoffMax: Duration(time.Minute), MaxBacklog: 10, BacklogPolicy: BacklogDeadLetter},
	}
	if diff := cmp.Diff(got, want); diff != "" {
		t.Fatalf("Decode (-got +want):\n%s", diff)
	}
	// Encode round-trips.
	b, err := Encode(got)
	if err != nil {
		t.Fatal(err)
	}
	again, err := Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(again, got); diff != "" {
		t.Fatalf("round trip (-got +want):\n%s", diff)
	}
}

func TestDecodeInvalid(t *testing.T) {
	cases := []struct{ name, in, field string }{
		{"empty", ``, "spec"},
		{"not object", `[]`, "spec"},
		{"unknown field", `{"url":"http://a/","secret":"x"}`, `unknown field "secret"`},
		{"trailing", `{"url":"http://a/"} {}`, "trailing"},
		{"no url", `{}`, "url: is required"},
		{"bad scheme", `{"url":"ftp://a/"}`, "url: scheme"},
		{"no host", `{"url":"http:///x"}`, "url: has no host"},
		{"credentials", `{"url":"http://u:p@a/"}`, "url: must not carry credentials"},
		{"format", `{"url":"http://a/","format":"xml"}`, "format"},
		{"transition", `{"url":"http://a/","filter":{"transitions":["exploded"]}}`, "filter.transitions[0]"},
		{"empty entry", `{"url":"http://a/","filter":{"projects":[""]}}`, "filter.projects[0]"},
		{"regex", `{"url":"http://a/","filter":{"regex":{"name":"("}}}`, "filter.regex.name"},
		{"reserved header", `{"url":"http://a/","headers":{"Webhook-Id":"x"}}`, "headers.Webhook-Id"},
		{"header CRLF", `{"url":"http://a/","headers":{"X-A":"a\r\nB: c"}}`, "headers.X-A"},
		{"header name", `{"url":"http://a/","headers":{"X A":"a"}}`, "headers.X A"},
		{"duration", `{"url":"http://a/","delivery":{"timeout":"soon"}}`, "timeout"},
		{"duration type", `{"url":"http://a/","delivery":{"timeout":5}}`, "timeout"},
		{"negative", `{"url":"http://a/","delivery":{"max_age":"-1h"}}`, "delivery.max_age"},
		{"backoff order", `{"url":"http://a/","delivery":{"backoff_initial":"1m","backoff_max":"1s"}}`, "delivery.backoff_initial"},
		{"policy", `{"url":"http://a/","delivery":{"backlog_policy":"drop"}}`, "delivery.backlog_policy"},
		{"type", `{"url":7}`, "url"},
		{"too large", `{"url":"http://a/","headers":{"X":"` + strings.Repeat("a", MaxSpecBytes) + `"}}`, "exceeds"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Decode([]byte(c.in))
			if err == nil {
				t.Fatal("Decode succeeded")
			}
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("error %v does not wrap ErrInvalid", err)
			}
			if !strings.Contains(err.Error(), c.field) {
				t.Errorf("error %q does not mention %q", err, c.field)
			}
		})
	}
}

func TestMatches(t *testing.T) {
	alarm := Alarm{Transition: Raised, ID: "a1", Name: "nic_down", Type: "prometheus", Severity: "CRITICAL", RawSeverity: "high",
		ProjectID: "", ResourceType: "nova.host", ResourceID: "h1", ResourceName: "host-1", ResourceProjectID: "p1",
		Properties: map[string]string{"rack": "r7"}}
	cases := []struct {
		name   string
		filter string
		want   bool
	}{
		{"empty", `{}`, true},
		{"transition", `{"transitions":["cleared","raised"]}`, true},
		{"transition no", `{"transitions":["cleared"]}`, false},
		{"severity folds case", `{"severities":["critical"]}`, true},
		{"raw severity", `{"severities":["HIGH"]}`, true},
		{"severity no", `{"severities":["warning"]}`, false},
		{"alarm type no", `{"alarm_types":["vitrage"]}`, false},
		{"resource type", `{"resource_types":["nova.host"]}`, true},
		{"project from resource", `{"projects":["p1"]}`, true},
		{"project no", `{"projects":["p2"]}`, false},
		{"and across lists", `{"alarm_names":["nic_down"],"resource_types":["nova.instance"]}`, false},
		{"regex prefix", `{"regex":{"name":"nic"}}`, true},
		{"regex anchored at start", `{"regex":{"name":"down"}}`, false},
		{"regex property", `{"regex":{"rack":"r[0-9]$"}}`, true},
		{"regex missing property", `{"regex":{"zone":"."}}`, false},
		{"regex resource", `{"regex":{"resource_name":"host-\\d"}}`, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s, err := Compile("s", 1, json.RawMessage(`{"url":"http://a/","filter":`+c.filter+`}`))
			if err != nil {
				t.Fatal(err)
			}
			if got := s.Matches(alarm); got != c.want {
				t.Errorf("Matches = %v, want %v", got, c.want)
			}
		})
	}
}

func rec(seq int64, kind event.Kind, id, spec string) event.Record {
	sub := &event.Subscription{ID: id}
	if spec != "" {
		sub.Spec = json.RawMessage(spec)
	}
	return event.Record{Seq: seq, Event: event.Event{Kind: kind, Subscription: sub}}
}

func TestRegistry(t *testing.T) {
	r := NewRegistry()
	steps := []struct {
		rec     event.Record
		want    Update
		ok, err bool
	}{
		{rec(1, event.KindSubscriptionPut, "b", `{"url":"http://b/"}`), Update{ID: "b", Seq: 1, Spec: json.RawMessage(`{"url":"http://b/"}`)}, true, false},
		{rec(2, event.KindSubscriptionPut, "a", `{"url":"http://a/"}`), Update{ID: "a", Seq: 2, Spec: json.RawMessage(`{"url":"http://a/"}`)}, true, false},
		{rec(3, event.KindSubscriptionPut, "a", `{"url":"gopher://a/"}`), Update{}, false, true},
		{rec(4, event.KindEntityUpsert, "", ""), Update{}, false, false},
		{rec(5, event.KindSubscriptionDelete, "b", ""), Update{ID: "b", Seq: 5, Deleted: true}, true, false},
		{rec(6, event.KindSubscriptionDelete, "zz", ""), Update{}, false, false},
	}
	for i, s := range steps {
		got, ok, err := r.Apply(s.rec)
		if (err != nil) != s.err || ok != s.ok {
			t.Fatalf("step %d: ok=%v err=%v, want ok=%v err=%v", i, ok, err, s.ok, s.err)
		}
		if diff := cmp.Diff(got, s.want); diff != "" {
			t.Fatalf("step %d (-got +want):\n%s", i, diff)
		}
	}
	all := r.All()
	if len(all) != 1 || all[0].ID != "a" || all[0].Spec.URL != "http://a/" || all[0].Seq != 2 {
		t.Fatalf("All = %+v", all)
	}
	r2, err := Restore(r.State())
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(r2.State(), r.State()); diff != "" {
		t.Fatalf("Restore (-got +want):\n%s", diff)
	}
}
