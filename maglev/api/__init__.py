"""The gRPC API: generated stubs (``maglev/api/gen``, from proto/ by ``make proto``) and the servicer."""
