"""Stochastic approximation (seed article 7; Zhao, *Mathematical Foundations of Reinforcement
Learning*, ch. 6): mean estimation, Robbins-Monro, Dvoretzky's recursion, gradient descent on the
mean objective."""
