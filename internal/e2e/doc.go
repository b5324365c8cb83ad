// Package e2e holds keywarden's end-to-end tests: real vault on SQLite, real
// policy engine, real audit log, real client registry and gateway, each
// venue's simulator on loopback, and unmodified ccxt (from npm) as the bot.
package e2e
