"""The VPP dataplane: desired state (pure), reconciliation plans (pure), and LbSync."""
