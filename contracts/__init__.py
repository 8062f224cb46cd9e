"""What the API server and the worker share, below both: workflow names,
inputs and signals, and the policies configuration fixes."""
