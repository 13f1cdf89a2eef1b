package path

import "testing"

func TestClean(t *testing.T) {
	tests := []struct {
		in   []string
		want string
	}{
		{nil, ""},
		{[]string{""}, ""},
		{[]string{"/"}, ""},
		{[]string{"//room/alice//"}, "room/alice"},
		{[]string{"room", "alice"}, "room/alice"},
		{[]string{"room/", "/alice/"}, "room/alice"},
		{[]string{"", "a", ""}, "a"},
		{[]string{"a//b///c"}, "a/b/c"},
	}
	for _, tt := range tests {
		got := Clean(tt.in...)
		if got != tt.want {
			t.Errorf("Clean(%q) = %q, want %q", tt.in, got, tt.want)
		}
		if !IsClean(got) {
			t.Errorf("IsClean(%q) = false for Clean output", got)
		}
	}
	for _, dirty := range []string{"/a", "a/", "a//b", "/"} {
		if IsClean(dirty) {
			t.Errorf("IsClean(%q) = true", dirty)
		}
	}
}
