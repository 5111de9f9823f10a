package selector

// PrefixLabels returns a selector in which every label name is prefixed with prefix and every all() and
// global() is replaced by the selectors allTo and globalTo (nil keeps it). The calculation uses it to turn
// a rule's namespaceSelector, written against namespace labels, into a selector over the endpoint labels
// the namespaces' profiles apply ("pcns.<key>"), with all() meaning "any namespaced endpoint" and global()
// "anything not namespaced".
func (s *Selector) PrefixLabels(prefix string, allTo, globalTo *Selector) *Selector {
	root := s.root.prefixLabels(prefix, allTo, globalTo)
	return &Selector{root: root, canon: string(root.appendCanonical(nil))}
}

func (n *node) prefixLabels(prefix string, allTo, globalTo *Selector) node {
	out := *n
	switch n.kind {
	case opAll:
		if allTo != nil {
			return allTo.root
		}
	case opGlobal:
		if globalTo != nil {
			return globalTo.root
		}
	case opHas, opEq, opNe, opContains, opStartsWith, opEndsWith, opIn, opNotIn:
		out.label = prefix + n.label
	case opNot, opAnd, opOr:
		out.kids = make([]node, len(n.kids))
		for i := range n.kids {
			out.kids[i] = n.kids[i].prefixLabels(prefix, allTo, globalTo)
		}
	}
	return out
}
