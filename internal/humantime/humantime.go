// Package humantime writes durations for people, as mails and pages state
// how long a link works or how often a mail can come. It is shared by mail
// and web, which do not import each other.
package humantime

import (
	"strconv"
	"time"
)

// Duration writes a link's lifetime for people: "24 hours", "1 hour",
// "30 minutes". Lifetimes are configured in whole units in practice; a
// remainder is rounded down to the largest unit.
func Duration(d time.Duration) string {
	if d <= 0 {
		return ""
	}
	unit := func(n int64, name string) string {
		if n == 1 {
			return "1 " + name
		}
		return strconv.FormatInt(n, 10) + " " + name + "s"
	}
	switch {
	case d >= 48*time.Hour && d%(24*time.Hour) == 0:
		return unit(int64(d/(24*time.Hour)), "day")
	case d >= time.Hour:
		return unit(int64(d/time.Hour), "hour")
	case d >= time.Minute:
		return unit(int64(d/time.Minute), "minute")
	default:
		return unit(max(int64(d/time.Second), 1), "second")
	}
}
