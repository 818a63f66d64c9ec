// Package accounts is Gatehouse's domain: users, pending signups, mailed
// tokens, sessions, the password policy and hashing, and the rules that tie
// them together. It knows nothing of HTTP, MongoDB or SMTP; it declares the
// interfaces it needs (Store, Mailer, Limiter) and the errors it returns.
//
// The rules that matter most for safety live here and only here:
//   - an unverified signup is only a token record; the user exists once the
//     mailed link AND the password chosen at signup are presented together,
//     so nobody who only knows an address can get into, or plant a password
//     on, the account its owner later verifies;
//   - tokens are 256-bit random values of which only a SHA-256 is stored;
//     exactly one redemption wins, and a newer token of a purpose voids the
//     older one;
//   - sessions are server-side records; the cookie carries only an
//     unguessable id, and a new one is issued at every sign-in.
//
// Store implementations need to offer only single-document atomicity: the
// embedded FerretDB has neither transactions nor atomic conditional updates,
// so every exactly-once decision here rests on an insert with a unique key or
// on a delete whose count says who won.
package accounts
