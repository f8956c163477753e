"""Pure numerical building blocks: arrays in, arrays out.

Nothing here imports param, Panel or the labs.  Modules are imported on demand
(``from explore.numerics.integrators import make_integrator``), so importing this
package stays light.
"""
