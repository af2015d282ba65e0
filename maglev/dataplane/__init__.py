"""The VPP dataplane: desired state, plans and the model (pure), and LbSync (reactor thread)
with its worker (VPP thread). Every module's docstring says which thread it runs on."""
