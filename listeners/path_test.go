package listeners_test

import (
	"strings"
	"testing"

	"github.com/causeway/causeway/internal/event"
	"github.com/causeway/causeway/listeners"
)

// TestEndpointPathIsLiteral: an endpoint's path is registered on
// http.ServeMux, which reads a space as the end of a method and braces as
// a wildcard, and panics on a pattern it cannot parse. A configured path
// such as "/v1/alert manager" crashed the listener at start (a panic, not
// a configuration error), and "/v1/{x}/am" took any path of that shape.
func TestEndpointPathIsLiteral(t *testing.T) {
	nop := listeners.DecoderFunc(func([]byte) ([]event.Event, error) { return nil, nil })
	for _, p := range []string{"/v1/alert manager", "/v1/{x", "/v1/{x}/am", "/v1/am?x=1", "/v1//am", "/v1/../am", "/v1/am\n", "v1/am"} {
		t.Run(p, func(t *testing.T) {
			defer func() {
				if v := recover(); v != nil {
					t.Fatalf("New panicked: %v", v)
				}
			}()
			_, err := listeners.New(listeners.Config{Auth: listeners.Auth{InsecureNoAuth: true}},
				listeners.Deps{Publisher: &fakePublisher{}, Endpoints: []listeners.Endpoint{{Name: "x", Path: p, Decoder: nop}}})
			if err == nil || !strings.Contains(err.Error(), "path") {
				t.Errorf("New: %v, want the path refused", err)
			}
			if err := listeners.CheckPath(p); err == nil {
				t.Error("CheckPath accepted it")
			}
		})
	}
	for _, p := range []string{"/", "/v1/alertmanager", "/v1/events", "/hooks/am-1_x.y~z/", "/Alertmanager"} {
		if err := listeners.CheckPath(p); err != nil {
			t.Errorf("CheckPath(%q): %v", p, err)
		}
	}
}
