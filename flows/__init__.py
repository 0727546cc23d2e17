"""The conversation itself, as data plus small callbacks: intake (the flow), keywords,
copy (every texter-facing sentence) and model (the contract with the engine)."""
