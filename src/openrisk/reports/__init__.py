"""Reports: the register and the executive summary as CSV, XLSX or PDF, kept per tenant."""
