package store

import (
	"testing"
	"testing/fstest"

	"github.com/google/go-cmp/cmp"
)

func TestSplitStatements(t *testing.T) {
	for _, tc := range []struct {
		name, src string
		want      []string
		wantErr   bool
	}{
		{"two", "-- c\nCREATE TABLE a (x INT);\n\nINSERT INTO a\nVALUES (1);\n", []string{"CREATE TABLE a (x INT)", "INSERT INTO a\nVALUES (1)"}, false},
		{"unterminated", "CREATE TABLE a (x INT)\n", nil, true},
		{"empty", "-- only a comment\n", nil, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := splitStatements(tc.src)
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v; want error %v", err, tc.wantErr)
			}
			if diff := cmp.Diff(got, tc.want); diff != "" {
				t.Errorf("statements (-got +want):\n%s", diff)
			}
		})
	}
}

func TestLoadMigrations(t *testing.T) {
	ms, err := Migrations()
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) < 2 || ms[0].Version != 1 || ms[1].Version != 2 {
		t.Fatalf("embedded migrations = %v; want the log (0001) and fencing (0002) first", ms)
	}
	for i := 1; i < len(ms); i++ {
		if ms[i].Version <= ms[i-1].Version {
			t.Errorf("migrations out of order: %s after %s", ms[i].Name, ms[i-1].Name)
		}
	}
	for name, fsys := range map[string]fstest.MapFS{
		"bad name":    {"m/1_x.sql": {Data: []byte("SELECT 1;\n")}},
		"dup version": {"m/0001_a.sql": {Data: []byte("SELECT 1;\n")}, "m/0001_b.sql": {Data: []byte("SELECT 1;\n")}},
		"zero":        {"m/0000_a.sql": {Data: []byte("SELECT 1;\n")}},
	} {
		if _, err := loadMigrations(fsys, "m"); err == nil {
			t.Errorf("%s: loadMigrations accepted it", name)
		}
	}
}
