"""maglev-vppemu: VPP's binary API and stats segment on unix sockets, with the lb plugin's behaviour."""
