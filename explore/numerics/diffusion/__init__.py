"""Diffusion-model sampling on targets with an exact model: targets, noise schedules, step
schedules, samplers (a decorator registry), reference PF-ODE solutions, optimal step schedules,
distribution distances and stability regions."""
