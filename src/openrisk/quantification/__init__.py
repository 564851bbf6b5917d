"""Quantified risks in the register: each risk's inputs and stored results, the register's
annual loss, and the tenant's loss appetite (the engine itself is ``openrisk.quant``)."""
