def to_nir(net): raise NotImplementedError
