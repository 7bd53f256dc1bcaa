package server

// registerDefaultRoutes installs the answers of a node with nothing
// configured for the domain features; later features replace them.
func (s *Server) registerDefaultRoutes() {}
