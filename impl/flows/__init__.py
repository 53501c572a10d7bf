"""Flows: normalizing flows with coupling layers, continuous normalizing flows, flow matching."""
