"""Storage backends: one module each, all implementing :class:`memvault.contract.Store`."""
