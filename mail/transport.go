package mail

import "context"

// Transport hands a rendered mail to the outside world. Deliver must give up
// when ctx ends: the worker's lease on the mail ends soon after, and a
// delivery that finishes later could be repeated by another worker.
type Transport interface {
	Deliver(ctx context.Context, to string, msg Rendered) error
}
