package vault

// DropCached zeroes and forgets every cached credential, so the next
// Credential call opens each key again from the store. Replicas call it
// when another process changed an exchange key (rotated its secret, or
// disabled it): a rotated key is then signed with its new secret, and a
// disabled one is refused. A request signing at that moment with a dropped
// credential fails rather than signing with a secret that changed.
func (v *Vault) DropCached() {
	v.mu.Lock()
	defer v.mu.Unlock()
	for k, c := range v.creds {
		zeroCredential(c)
		delete(v.creds, k)
	}
}
