package template

import (
	"fmt"
	"strings"
)

// Problem is one validation finding: where, what, and the Vitrage status
// code for the same rule (see Vitrage's template_validation/status_messages).
type Problem struct {
	Code    int
	Path    string // e.g. "scenarios[1].actions[0].raise_alarm", "entities.host"
	Message string
}

func (p Problem) String() string {
	if p.Path == "" {
		return fmt.Sprintf("%s (code %d)", p.Message, p.Code)
	}
	return fmt.Sprintf("%s: %s (code %d)", p.Path, p.Message, p.Code)
}

// ValidationError is returned by Parse when a template is refused. It lists
// every problem found.
type ValidationError struct {
	Name     string
	Problems []Problem
}

func (e *ValidationError) Error() string {
	var b strings.Builder
	if e.Name != "" {
		fmt.Fprintf(&b, "template %q: ", e.Name)
	} else {
		b.WriteString("template: ")
	}
	fmt.Fprintf(&b, "%d problem(s)", len(e.Problems))
	for _, p := range e.Problems {
		b.WriteString("\n  ")
		b.WriteString(p.String())
	}
	return b.String()
}

// CodeUnknownInclude is Vitrage's code of an include of a definition
// template that is not loaded.
const CodeUnknownInclude = 142

// Vitrage status messages used by the validator (codes as in Vitrage).
var statusMessages = map[int]string{
	1:   "template_id field contains incorrect string value.",
	2:   "Duplicate template_id definition.",
	3:   "template_id does not appear in the definition block.",
	4:   "Syntax error: ",
	5:   "Invalid yaml format: ",
	20:  "definitions section must contain entities field.",
	21:  "definitions section is a mandatory section.",
	41:  "Entity definition must contain template_id field.",
	42:  "Entity definition must contain category field.",
	43:  "At least one entity must be defined.",
	45:  "Invalid entity category. Category must be from types: [ALARM, RESOURCE]",
	46:  "Entity field is required.",
	47:  "Invalid regular expression defined in field: ",
	60:  "metadata section must contain id field.",
	62:  "metadata is a mandatory section.",
	63:  "Unsupported version. Version must be one of: [1, 2, 3]",
	64:  "metadata section must contain a type field in version 2. Type must be one of: [standard, definition, equivalence]",
	65:  "Invalid template type. Type must be one of: [standard, definition, equivalence]",
	80:  "scenarios is a mandatory section.",
	81:  "At least one scenario must be defined.",
	82:  "scenario field is required.",
	83:  "Scenario definition must contain condition field.",
	84:  "Scenario definition must contain actions field.",
	85:  "Failed to convert condition.",
	86:  "Not operator can be used only on relationships.",
	100: "Relationship definition must contain relationship_type field.",
	101: "Relationship field is required.",
	102: "Relationship definition must contain source field.",
	103: "Relationship definition must contain target field.",
	104: "Relationship definition must contain template_id field.",
	120: "Invalid action type. Action type must be from types: [set_state, raise_alarm, add_causal_relationship, mark_down, execute_mistral]",
	121: "At least one action must be defined.",
	122: "Action field is required.",
	123: "Action definition must contain action_type field.",
	124: "Action definition must contain action_target field.",
	125: "raise_alarm action must contain alarm_name field in properties block.",
	126: "raise_alarm action must contain severity field in properties block.",
	127: "raise_alarm action must contain target field in target_action block",
	128: "set_state action must contain state field in properties block.",
	129: "set_state action must contain target field in target_action block.",
	130: "add_causal_relationship action must contain target and source field in target_action block.",
	131: "mark_down action must contain 'target' field in 'target_action' block.",
	132: "add_causal_relationship action requires action_target to be ALARM",
	133: "execute_mistral action must contain workflow field in properties block",
	134: "condition can not contain only 'not' clauses",
	135: "condition must contain a common entity for all 'or' clauses",
	136: "Input parameters for the Mistral workflow in execute_mistral action must be placed under an 'input' block ",
	137: "Functions are supported only from version 2",
	138: "Only open or close parenthesis exists. Did you try to use a function?",
	140: "At least one template must be included",
	141: "Name field is unspecified for include",
	142: "Trying to include a template that does not exist",
	143: "A template definition file cannot contain 'includes' or 'scenarios' blocks",
	161: "get_param called for a parameter that is not defined in the 'parameters' block",
	// Vitrage's functions.get_param raises 162 for a call it cannot read.
	162:   "get_param call is malformed",
	163:   "Parameter has no value and no default: ",
	10000: "entities is a mandatory section.",
	10100: "Action must contain a 'target' property",
	10101: "Action 'target' must match an entity id",
	10102: "Action must contain a 'source' property",
	10103: "Action 'source' must match an entity id",
	10104: "raise_alarm action must contain an 'alarm_name' property",
	10105: "execute_mistral action must contain 'workflow' property",
	10107: "The property 'causing_alarm' in raise_alarm action must match an entity id",
	10200: "Condition contains an unknown entity id",
	// Causeway additions (no Vitrage equivalent; Vitrage fails later at run time).
	10201: "Action entity must appear, not negated, in every clause of the condition: ",
	10202: "Negated relationship must share an entity with a positive term of its clause: ",
	// Vitrage's subgraph matching grows a match along the template's edges
	// only, so it never completes such a clause; matching it anyway binds
	// every combination of vertices.
	10203: "The positive terms of a clause must connect all its entities: ",
}

type problems struct{ list []Problem }

// add records a problem with the Vitrage message for code, plus detail.
func (ps *problems) add(code int, path string, detail string) {
	ps.list = append(ps.list, Problem{Code: code, Path: path, Message: statusMessages[code] + detail})
}
