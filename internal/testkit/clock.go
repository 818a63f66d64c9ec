package testkit

import (
	"time"

	"github.com/gatehouse/gatehouse/accounts/accountstest"
)

// Clock is a settable clock for a gateway under test (see runAt in the root
// tests): it stands still until the test moves it. It is the domain tests'
// clock.
type Clock = accountstest.Clock

// NewClock returns a clock stopped at the current time.
func NewClock() *Clock { return accountstest.NewClockAt(time.Now()) }
