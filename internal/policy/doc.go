// Package policy decides whether a described exchange call is allowed.
//
// A policy is written in TOML as a [policy.NAME] table (see Definition and
// docs/policy.md), compiled once with Compile, and checked for every call.
// The rules understand orders, not only scopes: symbols, sides and order
// types, per-order quantity and notional caps, a price band against a
// reference price, rolling notional and order-count windows, open orders,
// trading hours, a withdrawal address allowlist with a cool-down, credential
// expiry and CEL expressions.
//
// The package is pure and clock-injected: nothing here reads the wall clock.
// (*Policy).Check is a pure function of its Input. The stateful rules
// (windows and open orders) live in a Limiter, which reserves budget
// atomically so that concurrent calls never overshoot a cap; the Engine ties
// policies, prices and the Limiter together for the gateway.
//
// Security: the package fails closed. A call it cannot fully evaluate (no
// reference price where one is needed, an expression that errors, an unknown
// withdrawal destination, a missing clock) is denied. Denial reasons name the
// limit and the offending value and never carry secrets.
package policy
