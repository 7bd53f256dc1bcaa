package control

import "context"

// operatorKey is the context key of the operator's token name.
type operatorKey struct{}

// WithOperator returns ctx carrying the name of the admin token an
// operator request was authorised with; Operate audits it.
func WithOperator(ctx context.Context, name string) context.Context {
	return context.WithValue(ctx, operatorKey{}, name)
}

// OperatorFrom is the token name WithOperator put in ctx ("" if none).
func OperatorFrom(ctx context.Context) string {
	s, _ := ctx.Value(operatorKey{}).(string)
	return s
}
