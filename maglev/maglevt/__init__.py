"""maglevt: out-of-band VIP prober for the terminal."""
