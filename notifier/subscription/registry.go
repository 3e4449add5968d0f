package subscription

import (
	"encoding/json"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"

	"github.com/causeway/causeway/internal/event"
)

// Alarm is what a filter sees of one alarm transition.
type Alarm struct {
	// Transition is Raised, Cleared or SeverityChanged.
	Transition string
	// The alarm's fields; Severity is the normalised one when there is one,
	// RawSeverity the one its source reported. A severities filter matches
	// either.
	ID, Name, Type, Severity, RawSeverity, State, ProjectID string
	Properties                                              map[string]string
	// The resource the alarm is on ("" when none is known).
	ResourceID, ResourceType, ResourceName, ResourceProjectID string
}

// Subscription is a validated Spec with its compiled filter.
type Subscription struct {
	ID string
	// Seq is the log seq of the subscription.put that set it.
	Seq  int64
	Spec Spec
	// Raw is the spec exactly as it was in the event.
	Raw   json.RawMessage
	regex []fieldRegex
}

type fieldRegex struct {
	field string
	re    *regexp.Regexp
}

// Compile validates spec and compiles its filter.
func Compile(id string, seq int64, raw json.RawMessage) (*Subscription, error) {
	spec, err := Decode(raw)
	if err != nil {
		return nil, err
	}
	s := &Subscription{ID: id, Seq: seq, Spec: spec, Raw: slices.Clone(raw)}
	for _, k := range sortedKeys(spec.Filter.Regex) {
		// Vitrage matches with Python's re.match: anchored at the start only.
		re, err := regexp.Compile(`^(?:` + spec.Filter.Regex[k] + `)`)
		if err != nil {
			return nil, fmt.Errorf("%w: filter.regex.%s: %v", ErrInvalid, k, err)
		}
		s.regex = append(s.regex, fieldRegex{field: k, re: re})
	}
	return s, nil
}

// Matches reports whether the subscription wants a.
func (s *Subscription) Matches(a Alarm) bool {
	return s.admits(a.Transition) && s.matchesAlarm(a)
}

// admits reports whether the transitions filter admits transition.
func (s *Subscription) admits(transition string) bool {
	return anyFold(s.Spec.Filter.Transitions, transition)
}

// matchesAlarm reports whether the filter, but for its transitions, matches
// the alarm as a shows it.
func (s *Subscription) matchesAlarm(a Alarm) bool {
	f := s.Spec.Filter
	project := a.ProjectID
	if project == "" {
		project = a.ResourceProjectID
	}
	if !anyFold(f.AlarmTypes, a.Type) || !anyFold(f.AlarmNames, a.Name) ||
		!(anyFold(f.Severities, a.Severity) || (a.RawSeverity != "" && anyFold(f.Severities, a.RawSeverity))) ||
		!anyFold(f.ResourceTypes, a.ResourceType) || !anyFold(f.Projects, project) {
		return false
	}
	for _, r := range s.regex {
		if !r.re.MatchString(a.field(r.field, project)) {
			return false
		}
	}
	return true
}

func (a Alarm) field(name, project string) string {
	switch name {
	case "id":
		return a.ID
	case "name":
		return a.Name
	case "type":
		return a.Type
	case "severity":
		return a.Severity
	case "state":
		return a.State
	case "resource_type":
		return a.ResourceType
	case "resource_id":
		return a.ResourceID
	case "resource_name":
		return a.ResourceName
	case "project_id":
		return project
	}
	return a.Properties[name]
}

// anyFold: an empty list matches everything.
func anyFold(list []string, v string) bool {
	if len(list) == 0 {
		return true
	}
	for _, x := range list {
		if strings.EqualFold(x, v) {
			return true
		}
	}
	return false
}

// Update is the effect of one subscription event on the Registry, for the
// leader to persist (outbox.Write) so that the notifier knows where to send.
type Update struct {
	ID      string
	Seq     int64
	Deleted bool
	// Spec is the raw spec (nil when Deleted).
	Spec json.RawMessage
}

// Registry holds the subscriptions in force after a prefix of the log, and
// the open alarms each follows (Tell): those whose raise or severity
// change matched its filter but for transitions, until they clear. Both are functions of the log prefix and part of
// the processor's state. It is not safe for concurrent use: the processor's
// apply loop owns it.
type Registry struct {
	subs map[string]*Subscription
	// told holds, per subscription id, the keys of the open alarms it
	// follows (it was told of them, or would have been had its
	// transitions filter admitted the raise or the change): bounded by
	// open alarms × subscriptions.
	told map[string]map[string]struct{}
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry {
	return &Registry{subs: map[string]*Subscription{}, told: map[string]map[string]struct{}{}}
}

// Apply applies one record. Records of other kinds are ignored (ok false).
// A subscription.put whose spec is invalid leaves the registry unchanged and
// returns the error (deterministically, so every node ignores it alike); the
// CLI and API validate before publishing, so this is a defence only.
func (r *Registry) Apply(rec event.Record) (u Update, ok bool, err error) {
	ev := rec.Event
	switch ev.Kind {
	case event.KindSubscriptionPut:
		if ev.Subscription == nil {
			return Update{}, false, fmt.Errorf("%w: seq %d: subscription.put without subscription", ErrInvalid, rec.Seq)
		}
		s, err := Compile(ev.Subscription.ID, rec.Seq, ev.Subscription.Spec)
		if err != nil {
			return Update{}, false, fmt.Errorf("seq %d: subscription %s: %w", rec.Seq, ev.Subscription.ID, err)
		}
		// A put of a known id replaces its spec but not what it was told:
		// the receiver still holds those alarms open, and is told how they
		// end whatever the new filter says (the filter governs new alarms).
		r.subs[s.ID] = s
		return Update{ID: s.ID, Seq: rec.Seq, Spec: s.Raw}, true, nil
	case event.KindSubscriptionDelete:
		if ev.Subscription == nil {
			return Update{}, false, fmt.Errorf("%w: seq %d: subscription.delete without subscription", ErrInvalid, rec.Seq)
		}
		id := ev.Subscription.ID
		if _, had := r.subs[id]; !had {
			return Update{}, false, nil
		}
		delete(r.subs, id)
		delete(r.told, id)
		return Update{ID: id, Seq: rec.Seq, Deleted: true}, true, nil
	}
	return Update{}, false, nil
}

// Get returns the subscription with id.
func (r *Registry) Get(id string) (*Subscription, bool) {
	s, ok := r.subs[id]
	return s, ok
}

// Len returns the number of subscriptions.
func (r *Registry) Len() int { return len(r.subs) }

// All returns the subscriptions sorted by id.
func (r *Registry) All() []*Subscription {
	out := make([]*Subscription, 0, len(r.subs))
	for _, s := range r.subs {
		out = append(out, s)
	}
	slices.SortFunc(out, func(a, b *Subscription) int { return strings.Compare(a.ID, b.ID) })
	return out
}

// Matching returns the subscriptions whose filter matches a, sorted by id.
// It does not know what they were told: Tell decides what is sent.
func (r *Registry) Matching(a Alarm) []*Subscription {
	var out []*Subscription
	for _, s := range r.All() {
		if s.Matches(a) {
			out = append(out, s)
		}
	}
	return out
}

// Tell returns the subscriptions to send a transition of the alarm whose
// key (category/type/id) is key, sorted by id, and records which open
// alarms each follows. Matching each transition alone would drop
// notifications: a subscription told an alarm was raised critical would
// never hear that it dropped to warning or cleared, since the alarm no
// longer matches its severities then. So a subscription follows an alarm
// from a raised or a severity_changed that the rest of its filter (all
// but transitions) matches, sent or not, until the alarm clears; and it is
// sent a transition its transitions filter admits when the rest of its
// filter matches the alarm now or it follows the alarm. A raise starts a
// new occurrence, whatever was recorded of an earlier one. Following
// whether or not a transition was sent is what lets a subscription to the
// clears of critical alarms hear the clear of one raised critical that
// dropped to warning before it cleared (up to apply semantics 7 it
// followed only alarms it had been sent a raised or severity_changed of).
func (r *Registry) Tell(key string, a Alarm) []*Subscription {
	var out []*Subscription
	for _, s := range r.All() {
		_, was := r.told[s.ID][key]
		if a.Transition == Raised {
			was = false
		}
		matches := s.matchesAlarm(a)
		if s.admits(a.Transition) && (matches || was) {
			out = append(out, s)
		}
		switch {
		case a.Transition == Cleared || (!matches && !was):
			r.forget(s.ID, key)
		default:
			r.remember(s.ID, key)
		}
	}
	return out
}

func (r *Registry) remember(id, key string) {
	set := r.told[id]
	if set == nil {
		set = map[string]struct{}{}
		r.told[id] = set
	}
	set[key] = struct{}{}
}

func (r *Registry) forget(id, key string) {
	set := r.told[id]
	delete(set, key)
	if len(set) == 0 {
		delete(r.told, id)
	}
}

// Told returns the keys of the open alarms subscription id follows
// (Tell), sorted.
func (r *Registry) Told(id string) []string {
	return slices.Sorted(maps.Keys(r.told[id]))
}

// Entry is one subscription in a registry State.
type Entry struct {
	ID   string          `json:"id"`
	Seq  int64           `json:"seq"`
	Spec json.RawMessage `json:"spec"`
	// Told are the keys of the open alarms it follows (Tell), sorted.
	Told []string `json:"told,omitempty"`
}

// State returns the registry as plain data sorted by id, for snapshots.
func (r *Registry) State() []Entry {
	all := r.All()
	out := make([]Entry, len(all))
	for i, s := range all {
		out[i] = Entry{ID: s.ID, Seq: s.Seq, Spec: slices.Clone(s.Raw)}
		if len(r.told[s.ID]) > 0 {
			out[i].Told = r.Told(s.ID)
		}
	}
	return out
}

// Restore rebuilds a registry from State.
func Restore(st []Entry) (*Registry, error) {
	r := NewRegistry()
	for _, e := range st {
		s, err := Compile(e.ID, e.Seq, e.Spec)
		if err != nil {
			return nil, fmt.Errorf("restore subscription %s: %w", e.ID, err)
		}
		r.subs[e.ID] = s
		for _, k := range e.Told {
			r.remember(e.ID, k)
		}
	}
	return r, nil
}
